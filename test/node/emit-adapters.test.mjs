// EMIT THROUGH EVERY BACKPLANE TO NODE.JS: `roomcast emit --adapter
// redis-sharded|redis-streams` publishes in the wire format of Node's
// @socket.io/redis-adapter createShardedAdapter (SPUBLISH, the room's channel
// for a single room) and of @socket.io/redis-streams-adapter (an entry of the
// stream): a Node.js socket.io 4.8 node on that adapter delivers the emit to
// all, to a room, to a room except another, and except a room.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { scenario, SAFETY_NET, waitFor } from "./lib/harness.mjs";
import { ROOT, TARGET } from "./lib/server.mjs";
import { startRedis, startNodeNode, redisClient, closeRedisClient } from "./lib/cluster.mjs";
import { tracked, join, WS } from "./lib/mixed.mjs";

const skip = TARGET !== "roomcast" && "roomcast emit is roomcast's (TARGET=roomcast only)";

function roomcastEmit(args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(ROOT, "bin", "roomcast"), ["emit", ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`roomcast emit ${args.join(" ")}: ${err.message}\nstderr: ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

for (const [backplane, nodeAdapter] of [["redis-sharded", "sharded"], ["redis-streams", "streams"]]) {
  describe(`roomcast emit --adapter ${backplane} to a Node.js node`, { skip }, () => {
    let redis, node, cmd;
    before(async () => {
      redis = await startRedis();
      node = await startNodeNode(redis.url, { adapter: nodeAdapter, clientName: "node" });
      cmd = await redisClient(redis.url, { name: "test" });
    });
    after(async () => {
      await node?.close();
      await closeRedisClient(cmd);
      await redis?.stop();
    });
    const emit = (event, ...flags) => roomcastEmit(["--adapter", backplane, "--redis-url", redis.url, "--event", event, "--data", "1", ...flags]);

    scenario("to all, to a room, to a room except a room, except a room", async (s) => {
      const cl = [];
      for (const [i, rooms] of [["a"], ["a", "b"], ["b"]].entries()) {
        const c = tracked(await s.client(node.url, WS), `c${i}`, "node");
        await join(c, ...rooms);
        cl.push(c);
      }
      if (nodeAdapter === "sharded") {
        // Node subscribes to a room's channel once it has members there.
        await waitFor(async () => {
          const r = await cmd.sendCommand(["PUBSUB", "SHARDNUMSUB", "socket.io#/#a#", "socket.io#/#b#"]);
          return r[1] === 1 && r[3] === 1;
        }, { what: "room channels subscribed" });
      } else {
        // Node's stream reader starts at the end of the stream: emit until it reads.
        await waitFor(async () => {
          await emit("ready");
          return cl[0].got.some((g) => g.ev === "ready");
        }, { timeout: SAFETY_NET, interval: 200, what: "the Node node reads the stream" });
        await waitFor(() => cl.every((c) => c.got.some((g) => g.ev === "ready")), { what: "ready everywhere" });
      }
      const cases = [
        { name: "all", flags: [], want: [0, 1, 2] },
        { name: "room", flags: ["--room", "a"], want: [0, 1] },
        { name: "room except", flags: ["--room", "a", "--except", "b"], want: [0] },
        { name: "except", flags: ["--except", "a"], want: [2] },
      ];
      for (const c of cl) c.got.length = 0;
      for (const tc of cases) {
        await emit(tc.name, ...tc.flags);
        await emit("fence", "--room", "a,b"); // after the case, on every client
      }
      await waitFor(() => cl.every((c) => c.got.filter((g) => g.ev === "fence").length === cases.length), { what: "every fence" });
      for (const [i, c] of cl.entries()) {
        const want = cases.flatMap((tc) => [...(tc.want.includes(i) ? [tc.name] : []), "fence"]);
        assert.deepEqual(c.got.map((g) => g.ev), want, `events of c${i}`);
        for (const g of c.got.filter((g) => g.ev !== "fence")) assert.deepEqual(g.args, [1], `${g.ev} args`);
      }
    });
  });
}
