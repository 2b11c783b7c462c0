// MIXED CLUSTER: one roomcast node (--adapter redis) and one Node.js
// socket.io 4.8 node on @socket.io/redis-adapter, sharing a private Redis.
// Everything the Node adapter offers must work in both directions: the
// cross-node checks of lib/mixed.mjs (room broadcasts, fetchSockets,
// serverSideEmit with acks, broadcast acks, socketsJoin / socketsLeave /
// disconnectSockets), then the Redis emitters and user rooms. Then three
// roomcast nodes on one Redis: no loss and latency.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { Emitter } from "@socket.io/redis-emitter";
import { scenario, useServer, ack, waitFor, sleep, SAFETY_NET } from "./lib/harness.mjs";
import { request, signHS256 } from "./lib/raw.mjs";
import { ROOT, TARGET } from "./lib/server.mjs";
import { startRedis, startNodeNode, startSniffer, redisClient, closeRedisClient } from "./lib/cluster.mjs";
import { crossNodeScenarios, tracked, join, apiOK, nodeSockets, roomsOf, barrier, latency, fmt, twoNamespaces, WS } from "./lib/mixed.mjs";

const skip = TARGET !== "roomcast" && "the Redis adapter is roomcast's (TARGET=roomcast only)";

/** Runs `bin/roomcast emit ...args`; resolves with {stdout, stderr} or rejects with them. */
function roomcastEmit(args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(ROOT, "bin", "roomcast"), ["emit", ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`roomcast emit ${args.join(" ")}: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

// ---- one roomcast node + one Node.js node ----------------------------------

describe("mixed cluster: roomcast + Node.js socket.io with @socket.io/redis-adapter", { skip }, () => {
  let redis, node, sniffer, emitterClient, emitter;
  // The roomcast node's flags get --redis-url once Redis runs (before hooks run in order).
  const NAMESPACES = "^/t-[a-z0-9]+$";
  const rcArgs = ["--adapter", "redis", "--namespaces", NAMESPACES];
  before(async () => {
    redis = await startRedis();
    rcArgs.push("--redis-url", redis.url);
  });
  const rc = useServer(rcArgs);
  before(async () => {
    node = await startNodeNode(redis.url, { namespaces: new RegExp(NAMESPACES) });
    // Broadcasts of namespace "/" only (not the request / response channels), for roomcastUid.
    sniffer = await startSniffer(redis.url, { key: "socket.io#/#" });
    emitterClient = await redisClient(redis.url);
    emitter = new Emitter(emitterClient);
    // Both nodes must be on the request channel before anything counts servers.
    await waitFor(async () => (await node.io.of("/").adapter.serverCount()) === 2, { what: "2 nodes on the request channel" });
  });
  after(async () => {
    await node?.close();
    await closeRedisClient(emitterClient);
    await sniffer?.close();
  });
  after(async () => { await redis?.stop(); }); // after roomcast (useServer's after hook runs first)

  const h = crossNodeScenarios({
    rc,
    node: () => node,
    nodeOffsets: false, // the Node node's clients get exactly the arguments
    streamOffsets: false,
    latencyMessages: 300,
    async roomcastUid(room) {
      // The uid is the first field of roomcast's broadcasts on socket.io#/#<room>#.
      let m;
      await waitFor(() => {
        m = sniffer.decoded().findLast((x) => x.channel === `socket.io#/#${room}#`);
        return m;
      }, { what: `roomcast's broadcast on socket.io#/#${room}#` });
      return m.value?.[0];
    },
  });
  const { rcClient, nodeClient, fromNode, fromRc, delivered } = h;
  const fromEmitter = (clients) => barrier(clients, (t) => emitter.emit("sync", t), "redis-emitter");

  scenario("disconnect with close tells every namespace of the connection, as Node does", async (s) => {
    const pair = (url, name, side, room) => twoNamespaces(s, url, name, side, room, "/t-y");
    const reasons = async (p, what) => {
      await waitFor(() => p.main.disconnects.length > 0 && p.extra.disconnects.length > 0, { what });
      await sleep(50);
      return { "/": p.main.disconnects, "/t-y": p.extra.disconnects };
    };
    // The reference: a Node node closing the connection of one of its own sockets.
    const ref = await pair(node.url, "ndRef", "node", "dc-n");
    node.io.in("dc-n").disconnectSockets(true);
    const want = await reasons(ref, "Node's own disconnectSockets(true)");
    s.note(`Node disconnectSockets(true) on its own socket: client reasons ${JSON.stringify(want)}`);

    const remote = await pair(rc().url, "rcRemote", "rc", "dc-r1");
    node.io.in("dc-r1").disconnectSockets(true); // through Redis
    const local = await pair(rc().url, "rcLocal", "rc", "dc-r2");
    await apiOK(rc(), "disconnect", { rooms: ["dc-r2"], close: true }); // roomcast's own socket
    assert.deepEqual(
      { "Node disconnectSockets(true) → roomcast socket": await reasons(remote, "roomcast connection closed by Node"),
        "roomcast /api/v1/disconnect close → roomcast socket": await reasons(local, "roomcast connection closed by roomcast") },
      { "Node disconnectSockets(true) → roomcast socket": want, "roomcast /api/v1/disconnect close → roomcast socket": want },
      "client disconnect reasons per namespace of a closed connection",
    );
  });

  scenario("@socket.io/redis-emitter and `roomcast emit` reach both nodes", async (s) => {
    const rc1 = await join(await rcClient(s, "rc1"), "em-r");
    const rc2 = await join(await rcClient(s, "rc2"), "em-r", "em-x");
    const rc3 = await rcClient(s, "rc3");
    const nd1 = await join(await nodeClient(s, "nd1"), "em-r");
    const nd2 = await join(await nodeClient(s, "nd2"), "em-r", "em-x");
    const nd3 = await nodeClient(s, "nd3");
    const all = [rc1, rc2, rc3, nd1, nd2, nd3];

    emitter.to("em-r").emit("em1", { a: 1 }, "two");
    await fromEmitter(all);
    delivered(all, "em1", ["rc1", "rc2", "nd1", "nd2"], [{ a: 1 }, "two"]);

    emitter.to("em-r").except("em-x").emit("em2", 2);
    await fromEmitter(all);
    delivered(all, "em2", ["rc1", "nd1"], [2]);

    emitter.emit("em3", 3);
    await fromEmitter(all);
    delivered(all, "em3", all.map((c) => c.name), [3]);

    emitter.to(rc3.id).emit("em4", "only rc3");
    emitter.to(["em-x", nd3.id]).emit("em5", 5);
    await fromEmitter(all);
    delivered(all, "em4", ["rc3"], ["only rc3"]);
    delivered(all, "em5", ["rc2", "nd2", "nd3"], [5]);

    // The CLI emitter (a process of its own; its PUBLISH has completed when it exits).
    await roomcastEmit(["--redis-url", redis.url, "--room", "em-r", "--event", "cli1", "--data", '{"b":[2,"x"]}']);
    await fromEmitter(all);
    delivered(all, "cli1", ["rc1", "rc2", "nd1", "nd2"], [{ b: [2, "x"] }]);

    await roomcastEmit(["--redis-url", redis.url, "--room", "em-r", "--except", "em-x", "--event", "cli2", "--data", "7"]);
    await fromEmitter(all);
    delivered(all, "cli2", ["rc1", "nd1"], [7]);

    await roomcastEmit(["--redis-url", redis.url, "--event", "cli3", "--data", '"everyone"']);
    await fromEmitter(all);
    delivered(all, "cli3", all.map((c) => c.name), ["everyone"]);

    await roomcastEmit(["--redis-url", redis.url, "--room", `em-x,${nd3.id}`, "--event", "cli4"]);
    await fromEmitter(all);
    delivered(all, "cli4", ["rc2", "nd2", "nd3"], []);
  });

  scenario("ToUser across nodes: a JWT user's room on roomcast, emitted to from the Node node", async (s) => {
    const secret = "mixed-cluster-secret";
    const rcJwt = await s.server(["--adapter", "redis", "--redis-url", redis.url, "--jwt-secret", secret]);
    await waitFor(async () => (await node.io.of("/").adapter.serverCount()) === 3, { what: "3 nodes on the request channel" });
    const token = signHS256({ sub: "u1", exp: Math.floor(Date.now() / 1000) + 600 }, secret);
    const u1 = tracked(await s.client(rcJwt.url, { ...WS, auth: { token } }), "u1", "rc");
    const other = await rcClient(s, "rcOther");
    const nd = await nodeClient(s, "nd");
    const all = [u1, other, nd];

    const fetched = await nodeSockets(node.io.in("user:u1"));
    assert.deepEqual(fetched.byId, { [u1.id]: roomsOf(u1, "user:u1") }, "Node io.in('user:u1').fetchSockets()");

    node.io.to("user:u1").emit("dm", { text: "hello u1" });
    await fromNode(all);
    delivered(all, "dm", ["u1"], [{ text: "hello u1" }]);

    // From the other roomcast node's HTTP API as well.
    await apiOK(rc(), "emit", { rooms: ["user:u1"], event: "dm2", data: "via roomcast" });
    await fromRc(all);
    delivered(all, "dm2", ["u1"], ["via roomcast"]);

    // Two roomcast nodes now answer roomcast:ping.
    const pings = await node.io.serverSideEmitWithAck("roomcast:ping");
    assert.equal(pings.length, 2, `two roomcast nodes answer roomcast:ping: ${JSON.stringify(pings)}`);
    assert.notEqual(pings[0].node, pings[1].node, "distinct node ids");
  });
});

// ---- three roomcast nodes on one Redis -------------------------------------

describe("three roomcast nodes on one Redis", { skip }, () => {
  const MESSAGES = 2000;
  const CLIENTS = 100;
  let redis;
  // per-message debug logs would dominate; the queue bound holds the whole
  // burst, so a client that lags under machine load is not cut (this test is
  // about loss across nodes, the backpressure suite about the bounds)
  const args = ["--adapter", "redis", "--log-level", "info", "--send-queue-packets", "4096"];
  before(async () => {
    redis = await startRedis();
    args.push("--redis-url", redis.url);
  });
  const nodes = [useServer(args), useServer(args), useServer(args)];
  after(async () => { await redis?.stop(); });

  scenario(`no loss across nodes: ${CLIENTS} clients on 3 nodes, ${MESSAGES} publishes from one node`, { timeout: 300_000 }, async (s) => {
    const members = [];
    for (let i = 0; i < CLIENTS; i += 20) {
      const group = await Promise.all(Array.from({ length: Math.min(20, CLIENTS - i) }, (_, j) =>
        s.client(nodes[(i + j) % 3]().url, WS, { timeout: 10_000 })));
      for (const [j, c] of group.entries()) {
        const st = { c, node: (i + j) % 3, count: 0, next: 1, errors: [], disconnects: [] };
        c.on("n", (k) => {
          if (k !== st.next && st.errors.length < 5) st.errors.push(`got ${k}, expected ${st.next}`);
          st.next = k + 1;
          st.count++;
        });
        c.on("disconnect", (reason) => st.disconnects.push(`${reason} after ${st.count} messages`));
        members.push(st);
      }
      await Promise.all(group.map(async (c) => assert.deepEqual(await ack(c, "join", "fan"), { ok: true })));
    }
    const pub = await s.client(nodes[0]().url, WS);
    const acks = [];
    const t0 = Date.now();
    for (let k = 1; k <= MESSAGES; k++) pub.emit("publish", { room: "fan", event: "n", data: k }, (r) => acks.push(r));
    const total = () => members.reduce((a, m) => a + m.count, 0);
    try {
      await waitFor(() => members.every((m) => m.count >= MESSAGES), { timeout: 4 * SAFETY_NET, interval: 50, what: "all messages delivered" });
    } catch (e) {
      // Where did it go? The nodes' drop / close / backplane counters, and the short clients' transports.
      for (const [i, srv] of nodes.entries()) {
        const res = await request(`${srv().url}/metrics`).catch((err) => ({ text: String(err) }));
        const lines = res.text.split("\n").filter((l) => /^roomcast_(send_dropped|slow_client|connection_closes|socket_disconnects|backplane_errors|connections_open|sockets_connected)/.test(l));
        s.note(`node${i} metrics: ${lines.join(" | ")}`);
      }
      for (const m of members.filter((x) => x.count < MESSAGES).slice(0, 10)) {
        s.note(`short client ${m.c.id} on node${m.node}: count ${m.count}, next ${m.next}, connected ${m.c.connected}, transport ${m.c.io.engine?.transport?.name}, engine ${m.c.io.engine?.readyState}`);
      }
      throw e;
    } finally {
      const short = members.filter((m) => m.count < MESSAGES);
      s.note(`${members.length} clients x ${MESSAGES} messages: delivered ${total()} of ${members.length * MESSAGES} in ${Date.now() - t0} ms` +
        (short.length ? `; ${short.length} short: ${short.slice(0, 10).map((m) => `node${m.node}:${m.count} ${JSON.stringify({ gaps: m.errors, disconnects: m.disconnects })}`).join("; ")}` : ""));
    }
    await sleep(300); // duplicates would show up now
    for (const [i, m] of members.entries()) {
      assert.deepEqual(m.errors, [], `client ${i} (node ${m.node}): out of order / duplicate / gap`);
      assert.equal(m.count, MESSAGES, `client ${i} (node ${m.node}): received ${m.count}`);
      assert.deepEqual(m.disconnects, [], `client ${i} (node ${m.node}) disconnected`);
    }
    await waitFor(() => acks.length === MESSAGES, { what: "all publish acks" });
    assert.ok(acks.every((r) => r?.ok === true), `a publish ack was not {ok:true}: ${JSON.stringify(acks.find((r) => r?.ok !== true))}`);
  });

  scenario("cross-node latency: 1,000 publishes one at a time, node A → client on node B (diagnostic)", { timeout: 60_000 }, async (s) => {
    const pub = await s.client(nodes[0]().url, WS);
    const sub = await s.client(nodes[1]().url, WS);
    assert.deepEqual(await ack(sub, "join", "lat"), { ok: true });
    const r = await latency(pub, sub, "lat", 1000);
    assert.equal(r.n, 1000);
    s.note(`roomcast A → Redis → roomcast B, ${r.n} messages one at a time: median ${fmt(r.median)}, p99 ${fmt(r.p99)}, max ${fmt(r.max)}`);
  });
});
