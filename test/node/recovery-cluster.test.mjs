// RECOVERY ACROSS A CLUSTER: two roomcast nodes on one private Redis, for
// each Redis adapter. A client on node A drops; while it is away its room
// gets messages from every origin: node B's hub `publish`, node B's HTTP
// API, a Node.js socket.io 4.8 node on the same Redis (its own adapter of
// that kind), the emitter (`roomcast emit --adapter`, in that adapter's format) and
// node A's HTTP API. Back on A, it must get every message exactly once, in order,
// with socket.recovered === true. Back on B instead, recovery must be
// complete or refused (a fresh session), never partial.
//
// Each remote message is followed, from the same origin, by a barrier
// message to a room the dropped client is not in, which a watcher on node A
// receives: node A has then handled the message (one Redis connection
// carries both, in order). The watcher is in no room of the dropped client,
// so it does not keep those rooms alive on node A.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { scenario, SAFETY_NET, ack, nextEvent, sleep, waitFor, connected } from "./lib/harness.mjs";
import { TARGET, ROOT } from "./lib/server.mjs";
import { startRedis, startNodeNode } from "./lib/cluster.mjs";
import { apiEmit } from "./lib/raw.mjs";

const skip = TARGET !== "roomcast" && "the Redis adapters are roomcast's (TARGET=roomcast only)";
const WS = { transports: ["websocket"] };

/** `roomcast emit --adapter adapter` (the Go emitter) against `redisUrl`; resolves when it exits 0. */
function goEmit(redisUrl, adapter, room, event, data) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(ROOT, "bin", "roomcast"), ["emit", "--adapter", adapter, "--redis-url", redisUrl, "--room", room, "--event", event, "--data", JSON.stringify(data)], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`roomcast emit exited ${code}: ${err}`))));
  });
}

async function apiOK(srv, body) {
  const res = await apiEmit(srv, body);
  assert.equal(res.status, 200, res.text);
}

/** Drops the transport from the client side and waits for the client's disconnect. */
async function dropTransport(c) {
  const gone = nextEvent(c, "disconnect");
  c.io.engine.close();
  await gone;
}

for (const adapter of ["redis", "redis-sharded", "redis-streams"]) {
  describe(`recovery on two nodes, --adapter ${adapter}`, { skip }, () => {
    let redis;
    before(async () => { redis = await startRedis(); });
    after(async () => { await redis?.stop(); });

    /** Two nodes A and B on the private Redis, with a watcher on A in room `barrier`. */
    async function cluster(s) {
      const args = ["--adapter", adapter, "--redis-url", redis.url, "--recovery-window", "2m"];
      const a = await s.server(args);
      const b = await s.server(args);
      const node = await startNodeNode(redis.url, { adapter: { redis: "redis", "redis-sharded": "sharded", "redis-streams": "streams" }[adapter] });
      s.defer(() => node.close());
      const watcher = await s.client(a.url, WS);
      assert.deepEqual(await ack(watcher, "join", "barrier"), { ok: true });
      const seen = [];
      watcher.on("b", (k) => seen.push(k));
      // The nodes see each other (requests and broadcasts cross).
      const probe = await s.client(b.url, WS);
      let k = 0;
      await waitFor(async () => {
        await apiOK(b, { rooms: ["barrier"], event: "b", data: `hello-${++k}` });
        await sleep(50);
        return seen.length > 0;
      }, { timeout: SAFETY_NET, interval: 0, what: "node B's broadcasts reaching node A" });
      probe.disconnect();
      /** Sends `step`'s message, then its barrier `tag` from the same origin; waits for the barrier on A. */
      const gated = async (tag, send) => {
        const got = waitFor(() => seen.includes(tag), { timeout: SAFETY_NET, what: `barrier ${tag} on node A` });
        await send(tag);
        await got;
      };
      return { a, b, node, gated };
    }

    /**
     * The scenario of issue 9.2: while the client on A is away, messages
     * 1..n reach its room from every origin. Returns the client, its
     * received numbers and the list of the numbers sent.
     */
    async function awayScenario(s, room) {
      const { a, b, node, gated } = await cluster(s);
      const c = await s.client(a.url, WS);
      const got = [];
      c.on("m", (n) => got.push(n));
      assert.deepEqual(await ack(c, "join", room), { ok: true });
      const first = nextEvent(c, "m");
      await apiOK(a, { rooms: [room], event: "m", data: 0 });
      assert.equal((await first)[0], 0);
      const id = c.id;

      await dropTransport(c);
      const pub = await s.client(b.url, WS);
      const sent = [0];
      const steps = [
        ["node B hub publish", async (n, tag) => {
          assert.deepEqual(await ack(pub, "publish", { room, event: "m", data: n }), { ok: true });
          assert.deepEqual(await ack(pub, "publish", { room: "barrier", event: "b", data: tag }), { ok: true });
        }],
        ["node B HTTP API", async (n, tag) => {
          await apiOK(b, { rooms: [room], event: "m", data: n });
          await apiOK(b, { rooms: ["barrier"], event: "b", data: tag });
        }],
        ["Node.js socket.io node", async (n, tag) => {
          node.io.to(room).emit("m", n);
          node.io.to("barrier").emit("b", tag);
        }],
        // The emitter in the wire format of the cluster's adapter.
        ["Go emitter", async (n, tag) => {
          await goEmit(redis.url, adapter, room, "m", n);
          await goEmit(redis.url, adapter, "barrier", "b", tag);
        }],
        ["node A HTTP API", async (n, tag) => {
          await apiOK(a, { rooms: [room], event: "m", data: n });
          await apiOK(a, { rooms: ["barrier"], event: "b", data: tag });
        }],
      ];
      for (const [what, send] of steps) {
        for (let i = 0; i < 3; i++) {
          const n = sent.length;
          sent.push(n);
          await gated(`${room}-${n}`, (tag) => send(n, tag).catch((e) => { throw new Error(`${what}: ${e.message}`); }));
        }
      }
      return { a, b, c, got, sent, id };
    }

    scenario("back on the same node: every message once, in order, recovered", { timeout: 8 * SAFETY_NET }, async (s) => {
      const { c, got, sent, id } = await awayScenario(s, `same-${adapter}`);
      c.connect();
      await connected(c);
      assert.equal(c.recovered, true, "socket.recovered on the node the client left");
      assert.equal(c.id, id);
      await waitFor(() => got.length >= sent.length, { timeout: SAFETY_NET, what: `${sent.length} messages (have ${JSON.stringify(got)})` });
      await ack(c, "echo", 0); // anything queued behind has arrived
      assert.deepEqual(got, sent, "every message once, in order");
    });

    scenario("back on the other node: complete or refused, never partial", { timeout: 8 * SAFETY_NET }, async (s) => {
      const room = `other-${adapter}`;
      const { b, c, got, sent, id } = await awayScenario(s, room);
      const c2 = s.socket(b.url, { ...WS, auth: { pid: c._pid, offset: c._lastOffset } });
      c2.on("m", (n) => got.push(n));
      await connected(c2);
      await ack(c2, "echo", 0);
      if (c2.id === id) {
        await waitFor(() => got.length >= sent.length, { timeout: SAFETY_NET, what: `${sent.length} messages (have ${JSON.stringify(got)})` });
        await ack(c2, "echo", 0);
        assert.deepEqual(got, sent, "recovered on the other node: every message once, in order");
      } else {
        assert.deepEqual(got, [0], "a fresh session gets no replay");
        assert.deepEqual(await ack(c2, "join", room), { ok: true }); // and works
      }
      s.note(`${adapter}: on the other node ${c2.id === id ? "recovered" : "refused (fresh session)"}`);
      if (adapter === "redis-streams") assert.equal(c2.id, id, "streams sessions live in Redis: recovered on any node");
    });
  });
}
