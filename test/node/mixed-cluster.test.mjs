// MIXED CLUSTER: one roomcast node (--adapter redis) and one Node.js
// socket.io 4.8 node on @socket.io/redis-adapter, sharing a private Redis.
// Everything the Node adapter offers must work in both directions: room
// broadcasts, fetchSockets, serverSideEmit with acks, broadcast acks,
// socketsJoin / socketsLeave / disconnectSockets, the Redis emitters, and
// user rooms. Then three roomcast nodes on one Redis: no loss and latency.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { Emitter } from "@socket.io/redis-emitter";
import { scenario, useServer, ack, waitFor, sleep, connected } from "./lib/harness.mjs";
import { request, apiEmit, signHS256 } from "./lib/raw.mjs";
import { ROOT, TARGET } from "./lib/server.mjs";
import { startRedis, startNodeNode, startSniffer, redisClient, closeRedisClient } from "./lib/cluster.mjs";

const skip = TARGET !== "roomcast" && "the Redis adapter is roomcast's (TARGET=roomcast only)";
const WS = { transports: ["websocket"] };

// ---- helpers ----------------------------------------------------------------

/**
 * Wraps a connected client: records every event it receives (`got`) and how
 * it disconnected. `side` is "rc" (roomcast) or "node".
 */
function tracked(socket, name, side) {
  const c = { socket, name, side, id: socket.id, got: [], disconnects: [] };
  socket.onAny((ev, ...args) => c.got.push({ ev, args }));
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  return c;
}

async function join(c, ...rooms) {
  for (const room of rooms) {
    assert.deepEqual(await ack(c.socket, "join", room), { ok: true }, `${c.name} join ${room}`);
  }
  return c;
}

function api(srv, route, body) {
  return request(`${srv.url}/api/v1/${route}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

async function apiOK(srv, route, body) {
  const res = await api(srv, route, body);
  assert.equal(res.status, 200, `POST /api/v1/${route} ${JSON.stringify(body)}: HTTP ${res.status} ${res.text}`);
  return res.json();
}

/** GET /api/v1/sockets: {id → sorted rooms} plus the raw list. */
async function rcSockets(srv, { room = [], except = [] } = {}) {
  const q = new URLSearchParams();
  for (const r of [].concat(room)) q.append("room", r);
  for (const e of [].concat(except)) q.append("except", e);
  const res = await request(`${srv.url}/api/v1/sockets?${q}`);
  assert.equal(res.status, 200, `GET /api/v1/sockets?${q}: HTTP ${res.status} ${res.text}`);
  const { sockets } = res.json();
  return { list: sockets, byId: Object.fromEntries(sockets.map((s) => [s.id, [...(s.rooms ?? [])].sort()])) };
}

/** Node fetchSockets → {id → sorted rooms} plus the raw list. */
async function nodeSockets(op) {
  const list = await op.fetchSockets();
  return { list, byId: Object.fromEntries(list.map((s) => [s.id, [...s.rooms].sort()])) };
}

/** Replaces Buffers / ArrayBuffers / typed arrays with {bin: [bytes]}, recursively. */
function bytes(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { bin: [...Buffer.from(v instanceof ArrayBuffer ? v : v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))] };
  }
  if (Array.isArray(v)) return v.map(bytes);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytes(x)]));
  return v;
}

const ids = (...cs) => cs.map((c) => c.id).sort();
const roomsOf = (c, ...rooms) => [c.id, ...rooms].sort();

let syncSeq = 0;
/**
 * Sends a "sync" marker to every socket from the same origin as the emits
 * under test (same publisher, so it arrives after them) and waits until each
 * client in `clients` has it: afterwards, what a client has not received is
 * not coming.
 */
async function barrier(clients, emitSync, what = "sync") {
  const token = `sync-${++syncSeq}`;
  await emitSync(token);
  await waitFor(
    () => clients.every((c) => c.got.some((g) => g.ev === "sync" && g.args[0] === token)),
    {
      timeout: 5000,
      what: `${what} marker ${token} at ${clients.filter((c) => !c.got.some((g) => g.ev === "sync" && g.args[0] === token)).map((c) => c.name).join(",") || "every client"}`,
    },
  );
}

/**
 * Asserts that exactly the clients named in `expected` received `ev` once,
 * and the rest not at all. Node clients must get exactly `args`; roomcast
 * clients `args` first (a recovery offset may follow).
 */
function delivered(clients, ev, expected, args) {
  const got = Object.fromEntries(clients.map((c) => [c.name, c.got.filter((g) => g.ev === ev).length]));
  const want = Object.fromEntries(clients.map((c) => [c.name, expected.includes(c.name) ? 1 : 0]));
  assert.deepEqual(got, want, `who received "${ev}" (name → count)`);
  if (args === undefined) return;
  for (const c of clients.filter((x) => expected.includes(x.name))) {
    const a = c.got.find((g) => g.ev === ev).args;
    if (c.side === "node") assert.deepEqual(a, args, `${c.name} (Node node): arguments of "${ev}"`);
    else assert.deepEqual(a.slice(0, args.length), args, `${c.name} (roomcast): arguments of "${ev}"`);
  }
}

/** Runs `bin/roomcast emit ...args`; resolves with {stdout, stderr} or rejects with them. */
function roomcastEmit(args) {
  return new Promise((resolve, reject) => {
    execFile(path.join(ROOT, "bin", "roomcast"), ["emit", ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`roomcast emit ${args.join(" ")}: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Publishes `n` messages one at a time from `pub` to `room`, timing their arrival at `sub`. */
async function latency(pub, sub, room, n) {
  const lat = [];
  let waiting = null;
  const onLat = (m) => {
    if (waiting && m?.k === waiting.k) { lat.push(performance.now() - m.t); waiting.resolve(); }
  };
  sub.on("lat", onLat);
  try {
    for (let k = 1; k <= n; k++) {
      const arrived = new Promise((resolve) => { waiting = { k, resolve }; });
      pub.emit("publish", { room, event: "lat", data: { k, t: performance.now() } });
      let t;
      await Promise.race([
        arrived,
        new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`latency message ${k} of ${n} not received within 5 s`)), 5000); }),
      ]).finally(() => clearTimeout(t));
    }
  } finally {
    sub.off("lat", onLat);
  }
  lat.sort((a, b) => a - b);
  return { n: lat.length, median: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

const fmt = (ms) => `${ms.toFixed(2)} ms`;

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
    sniffer = await startSniffer(redis.url);
    emitterClient = await redisClient(redis.url);
    emitter = new Emitter(emitterClient);
    // Both nodes must be on the request channel before anything counts servers.
    await waitFor(async () => (await node.io.of("/").adapter.serverCount()) === 2, { timeout: 5000, what: "2 nodes on the request channel" });
  });
  after(async () => {
    await node?.close();
    await closeRedisClient(emitterClient);
    await sniffer?.close();
  });
  after(async () => { await redis?.stop(); }); // after roomcast (useServer's after hook runs first)

  const rcClient = async (s, name, opts = {}) => tracked(await s.client(rc().url, { ...WS, ...opts }), name, "rc");
  const nodeClient = async (s, name, opts = {}) => tracked(await s.client(node.url, { ...WS, ...opts }), name, "node");
  const fromNode = (clients) => barrier(clients, (t) => node.io.emit("sync", t), "Node node");
  const fromRc = (clients) => barrier(clients, async (t) => {
    const res = await apiEmit(rc(), { event: "sync", data: t });
    assert.equal(res.status, 200, res.text);
  }, "roomcast");
  const fromEmitter = (clients) => barrier(clients, (t) => emitter.emit("sync", t), "redis-emitter");

  /** Four clients per node: A in r1, B in r1+r2, C in r2, D in no room. */
  async function population(s, tag) {
    const r1 = `${tag}-r1`, r2 = `${tag}-r2`;
    const cs = {
      rcA: await join(await rcClient(s, "rcA"), r1),
      rcB: await join(await rcClient(s, "rcB", { transports: ["polling"] }), r1, r2),
      rcC: await join(await rcClient(s, "rcC"), r2),
      rcD: await rcClient(s, "rcD"),
      ndA: await join(await nodeClient(s, "ndA"), r1),
      ndB: await join(await nodeClient(s, "ndB", { transports: ["polling"] }), r1, r2),
      ndC: await join(await nodeClient(s, "ndC"), r2),
      ndD: await nodeClient(s, "ndD"),
    };
    return { r1, r2, cs, all: Object.values(cs) };
  }

  scenario("room broadcasts both ways: hub publish and io.to(room).emit", async (s) => {
    const { r1, cs, all } = await population(s, "rb");
    // roomcast client → hub publish → the room on both nodes (not the publisher).
    assert.deepEqual(await ack(cs.rcA.socket, "publish", { room: r1, event: "p1", data: { from: "rcA", n: [1, 2] } }), { ok: true });
    await fromRc(all);
    delivered(all, "p1", ["rcB", "ndA", "ndB"], [{ from: "rcA", n: [1, 2] }]);

    // Node client → Node hub publish (socket.to(room)) → roomcast clients too.
    assert.deepEqual(await ack(cs.ndA.socket, "publish", { room: r1, event: "p2", data: "from ndA" }), { ok: true });
    await fromNode(all);
    delivered(all, "p2", ["rcA", "rcB", "ndB"], ["from ndA"]);

    // Node server: io.to(room).emit, several arguments.
    node.io.to(r1).emit("e3", { n: 3 }, "second", 3.5, null, true);
    await fromNode(all);
    delivered(all, "e3", ["rcA", "rcB", "ndA", "ndB"], [{ n: 3 }, "second", 3.5, null, true]);

    // roomcast HTTP API to the room.
    await apiOK(rc(), "emit", { rooms: [r1], event: "e4", data: { n: 4 } });
    await fromRc(all);
    delivered(all, "e4", ["rcA", "rcB", "ndA", "ndB"], [{ n: 4 }]);

    // An event without arguments.
    node.io.to(r1).emit("e5");
    await apiOK(rc(), "emit", { rooms: [r1], event: "e6" });
    await fromNode(all);
    await fromRc(all);
    delivered(all, "e5", ["rcA", "rcB", "ndA", "ndB"], []);
    delivered(all, "e6", ["rcA", "rcB", "ndA", "ndB"], []);
    for (const c of [cs.ndA, cs.ndB]) {
      for (const ev of ["e5", "e6"]) assert.deepEqual(c.got.find((g) => g.ev === ev)?.args, [], `${c.name}: "${ev}" has no arguments`);
    }

    // Binary arguments cross in both directions (msgpack bin on the Redis wire).
    node.io.to(r1).emit("b1", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
    await fromNode(all);
    assert.deepEqual(await ack(cs.rcA.socket, "publish", { room: r1, event: "b2", data: { buf: Uint8Array.from([9, 8, 0, 255]) } }), { ok: true });
    await fromRc(all);
    const binOf = (c, ev) => bytes(c.got.find((g) => g.ev === ev)?.args);
    for (const c of [cs.rcA, cs.rcB, cs.ndA, cs.ndB]) {
      assert.deepEqual(binOf(c, "b1").slice(0, 2), [{ bin: [1, 2, 3] }, { nested: { bin: [4] } }], `${c.name}: binary arguments of b1 (from the Node node)`);
    }
    for (const c of [cs.rcB, cs.ndA, cs.ndB]) {
      assert.deepEqual(binOf(c, "b2").slice(0, 1), [{ buf: { bin: [9, 8, 0, 255] } }], `${c.name}: binary argument of b2 (from roomcast)`);
    }
    delivered(all, "b1", ["rcA", "rcB", "ndA", "ndB"]);
    delivered(all, "b2", ["rcB", "ndA", "ndB"]);
  });

  scenario("broadcast to all and to several rooms, both ways", async (s) => {
    const { r1, r2, all } = await population(s, "ba");
    node.io.emit("all1", "from node");
    await fromNode(all);
    delivered(all, "all1", all.map((c) => c.name), ["from node"]);

    await apiOK(rc(), "emit", { event: "all2", data: "from roomcast" });
    await fromRc(all);
    delivered(all, "all2", all.map((c) => c.name), ["from roomcast"]);

    // Several rooms: a socket in both gets it once.
    node.io.to([r1, r2]).emit("multi1", 1);
    await fromNode(all);
    delivered(all, "multi1", ["rcA", "rcB", "rcC", "ndA", "ndB", "ndC"], [1]);

    await apiOK(rc(), "emit", { rooms: [r1, r2], event: "multi2", data: 2 });
    await fromRc(all);
    delivered(all, "multi2", ["rcA", "rcB", "rcC", "ndA", "ndB", "ndC"], [2]);
  });

  scenario("except a room and except a socket id, both ways", async (s) => {
    const { r1, r2, cs, all } = await population(s, "ex");
    node.io.to(r1).except(r2).emit("x1", "a");
    await fromNode(all);
    delivered(all, "x1", ["rcA", "ndA"], ["a"]);

    await apiOK(rc(), "emit", { rooms: [r1], except: [r2], event: "x2", data: "b" });
    await fromRc(all);
    delivered(all, "x2", ["rcA", "ndA"], ["b"]);

    node.io.to(r1).except(cs.rcA.id).emit("x3", "c");
    await fromNode(all);
    delivered(all, "x3", ["rcB", "ndA", "ndB"], ["c"]);

    await apiOK(rc(), "emit", { rooms: [r1], except: [cs.ndA.id], event: "x4", data: "d" });
    await fromRc(all);
    delivered(all, "x4", ["rcA", "rcB", "ndB"], ["d"]);

    // Everyone except a room.
    node.io.except(r2).emit("x5", "e");
    await fromNode(all);
    delivered(all, "x5", ["rcA", "rcD", "ndA", "ndD"], ["e"]);

    await apiOK(rc(), "emit", { except: [r2, cs.ndD.id], event: "x6", data: "f" });
    await fromRc(all);
    delivered(all, "x6", ["rcA", "rcD", "ndA"], ["f"]);
  });

  scenario("emit to a single socket id on the other node", async (s) => {
    const { cs, all } = await population(s, "sid");
    node.io.to(cs.rcC.id).emit("d1", { to: "rcC" });
    await fromNode(all);
    delivered(all, "d1", ["rcC"], [{ to: "rcC" }]);

    await apiOK(rc(), "emit", { rooms: [cs.ndC.id], event: "d2", data: { to: "ndC" } });
    await fromRc(all);
    delivered(all, "d2", ["ndC"], [{ to: "ndC" }]);

    // Clients address each other by id through the hub.
    assert.deepEqual(await ack(cs.rcD.socket, "publish", { room: cs.ndD.id, event: "d3", data: "hi ndD" }), { ok: true });
    await fromRc(all);
    delivered(all, "d3", ["ndD"], ["hi ndD"]);

    assert.deepEqual(await ack(cs.ndD.socket, "publish", { room: cs.rcD.id, event: "d4", data: "hi rcD" }), { ok: true });
    await fromNode(all);
    delivered(all, "d4", ["rcD"], ["hi rcD"]);

    // A Node RemoteSocket for a roomcast socket: emit goes to that socket only.
    const remote = (await node.io.in(cs.rcB.id).fetchSockets()).find((x) => x.id === cs.rcB.id);
    assert.ok(remote, `Node fetchSockets in ${cs.rcB.id} finds the roomcast socket`);
    remote.emit("d5", "via RemoteSocket");
    await fromNode(all);
    delivered(all, "d5", ["rcB"], ["via RemoteSocket"]);
  });

  scenario("fetchSockets: Node sees roomcast's sockets, roomcast sees Node's", async (s) => {
    const room = "fs-room";
    const rc1 = await join(await rcClient(s, "rc1", { auth: { tag: "rc1" } }), room);
    const rc2 = await rcClient(s, "rc2");
    const nd1 = await join(await nodeClient(s, "nd1", { auth: { data: { tag: "nd1" } } }), room, "fs-other");
    const nd2 = await nodeClient(s, "nd2");

    // Node: io.in(room).fetchSockets() across the cluster.
    const inRoom = await nodeSockets(node.io.in(room));
    assert.deepEqual(inRoom.byId, { [rc1.id]: roomsOf(rc1, room), [nd1.id]: roomsOf(nd1, room, "fs-other") },
      "Node io.in(room).fetchSockets(): id → rooms");
    const remote = inRoom.list.find((x) => x.id === rc1.id);
    assert.equal(typeof remote.handshake, "object", "RemoteSocket.handshake of a roomcast socket is an object");
    assert.deepEqual(remote.handshake?.auth, { tag: "rc1" }, "RemoteSocket.handshake.auth of a roomcast socket");

    const except = await nodeSockets(node.io.in(room).except(rc1.id));
    assert.deepEqual(Object.keys(except.byId), [nd1.id], "Node io.in(room).except(roomcast id).fetchSockets()");

    const everyone = await nodeSockets(node.io);
    for (const c of [rc1, rc2, nd1, nd2]) assert.ok(everyone.byId[c.id], `Node io.fetchSockets() includes ${c.name}`);
    assert.deepEqual(everyone.byId[rc2.id], [rc2.id], "rc2 is only in its own room");

    // roomcast: GET /api/v1/sockets?room=... across the cluster.
    const rcView = await rcSockets(rc(), { room });
    assert.deepEqual(rcView.byId, { [rc1.id]: roomsOf(rc1, room), [nd1.id]: roomsOf(nd1, room, "fs-other") },
      "roomcast GET /api/v1/sockets?room=: id → rooms");
    const ndInfo = rcView.list.find((x) => x.id === nd1.id);
    assert.deepEqual(ndInfo.data, { node: "node", tag: "nd1" }, "the Node socket's data as roomcast reports it");
    assert.deepEqual(ndInfo.handshake?.auth, { data: { tag: "nd1" } }, "the Node socket's handshake.auth as roomcast reports it");

    // Diagnostics: how a roomcast socket looks to Node next to how a Node socket looks (not asserted).
    const shape = (x) => ({ keys: Object.keys(x.handshake ?? {}).sort().join(","), headers: Object.keys(x.handshake?.headers ?? {}).sort().join(","),
      time: x.handshake?.time, issued: typeof x.handshake?.issued, data: x.data === null ? "null" : typeof x.data });
    s.note(`handshake of a roomcast socket (Node RemoteSocket): ${JSON.stringify(shape(remote))}`);
    s.note(`handshake of a Node socket (roomcast /api/v1/sockets): ${JSON.stringify(shape(ndInfo))}`);

    const rcExcept = await rcSockets(rc(), { room, except: nd1.id });
    assert.deepEqual(Object.keys(rcExcept.byId), [rc1.id], "roomcast GET /api/v1/sockets?room=&except=<Node id>");

    const rcAll = await rcSockets(rc());
    for (const c of [rc1, rc2, nd1, nd2]) assert.ok(rcAll.byId[c.id], `roomcast GET /api/v1/sockets includes ${c.name}`);
  });

  scenario("serverSideEmit with acks, both ways", async (s) => {
    const rcs = [];
    for (let i = 0; i < 3; i++) rcs.push(await rcClient(s, `rc${i}`));
    await nodeClient(s, "nd0");

    // Node → roomcast: roomcast:ping answers {node, sockets}. Earlier scenarios' sockets may still be closing.
    let answers;
    await waitFor(async () => {
      answers = await node.io.serverSideEmitWithAck("roomcast:ping");
      return answers.length === 1 && answers[0]?.sockets === rcs.length;
    }, { timeout: 5000, interval: 100, what: `roomcast:ping answering sockets=${rcs.length} (last: ${JSON.stringify(answers)})` });
    assert.equal(typeof answers[0].node, "string");
    assert.ok(answers[0].node.length > 0, "roomcast:ping names the node");
    assert.deepEqual(Object.keys(answers[0]).sort(), ["node", "sockets"]);

    // The node id is roomcast's uid on the wire (the first field of its broadcasts).
    sniffer.clear();
    await apiOK(rc(), "emit", { rooms: ["sse-nobody"], event: "probe" });
    let uid;
    await waitFor(() => {
      const m = sniffer.decoded().find((x) => x.channel === "socket.io#/#sse-nobody#");
      uid = m?.value?.[0];
      return m;
    }, { timeout: 3000, what: "roomcast's broadcast on socket.io#/#sse-nobody#" });
    assert.equal(answers[0].node, uid, "roomcast:ping's node is roomcast's uid on the Redis wire");

    // roomcast → Node: POST /api/v1/server-emit with ack.
    const seen = [];
    const onX = (...args) => {
      seen.push(args.map((a) => (typeof a === "function" ? "<ack>" : a)));
      const cb = args.at(-1);
      if (typeof cb === "function") cb({ from: "node", sockets: node.io.of("/").sockets.size });
    };
    const onEcho = (...args) => { const cb = args.pop(); cb({ echo: args }); };
    const plain = [];
    const onPlain = (...args) => plain.push(args);
    node.io.on("x", onX);
    node.io.on("x-echo", onEcho);
    node.io.on("x-plain", onPlain);
    s.defer(() => { node.io.off("x", onX); node.io.off("x-echo", onEcho); node.io.off("x-plain", onPlain); });

    const r1 = await apiOK(rc(), "server-emit", { event: "x", ack: true });
    assert.deepEqual(r1, { ok: true, responses: [{ from: "node", sockets: node.io.of("/").sockets.size }] }, "server-emit x with ack");
    assert.deepEqual(seen, [["<ack>"]], "the Node listener of x got only the ack callback");

    const r2 = await apiOK(rc(), "server-emit", { event: "x-echo", data: { a: [1, "two", null] }, ack: true });
    assert.deepEqual(r2, { ok: true, responses: [{ echo: [{ a: [1, "two", null] }] }] }, "server-emit x-echo with data and ack");

    await apiOK(rc(), "server-emit", { event: "x-plain", data: "no ack" });
    await waitFor(() => plain.length > 0, { timeout: 3000, what: "server-emit without ack at the Node node" });
    await sleep(100);
    assert.deepEqual(plain, [["no ack"]], "the Node listener of x-plain got exactly the data, no callback");
  });

  scenario("broadcast acks across nodes: io.timeout().emitWithAck and POST /api/v1/emit with ack", async (s) => {
    const room = "ack-room";
    const voters = [
      await rcClient(s, "rc1"), await rcClient(s, "rc2"), await rcClient(s, "rc3", { transports: ["polling"] }),
      await nodeClient(s, "nd1"), await nodeClient(s, "nd2"),
    ];
    const ballots = [];
    for (const c of voters) {
      await join(c, room);
      c.socket.on("vote", (...args) => {
        const cb = args.pop();
        ballots.push({ by: c.name, data: args[0] });
        cb({ by: c.name });
      });
    }
    const names = voters.map((c) => c.name).sort();
    const by = (acks) => acks.map((a) => a?.by).sort();

    // To a room.
    let t0 = Date.now();
    const nodeRoom = await node.io.to(room).timeout(2000).emitWithAck("vote", { q: 1 });
    s.note(`Node io.to(room).timeout(2000).emitWithAck: ${nodeRoom.length} acks in ${Date.now() - t0} ms`);
    assert.deepEqual(by(nodeRoom), names, "Node emitWithAck to the room: one ack per client of both nodes");

    t0 = Date.now();
    const rcRoom = await apiOK(rc(), "emit", { rooms: [room], event: "vote", data: { q: 2 }, ack: true, timeout: 2000 });
    s.note(`roomcast POST /api/v1/emit ack to the room: ${rcRoom.acks?.length} acks in ${Date.now() - t0} ms`);
    assert.equal(rcRoom.ok, true);
    assert.deepEqual(by(rcRoom.acks), names, "roomcast emit with ack to the room: one ack per client of both nodes");
    assert.deepEqual(ballots.map((b) => b.data).sort((a, b) => a.q - b.q), [...voters.map(() => ({ q: 1 })), ...voters.map(() => ({ q: 2 }))]);

    // To everyone: first the cluster must hold exactly these sockets (earlier scenarios' are closing).
    await waitFor(async () => (await node.io.fetchSockets()).length === voters.length,
      { timeout: 5000, interval: 100, what: `the cluster to hold exactly the ${voters.length} voters` });
    const nodeAll = await node.io.timeout(2000).emitWithAck("vote");
    assert.deepEqual(by(nodeAll), names, "Node io.timeout(2000).emitWithAck to all");
    const rcAll = await apiOK(rc(), "emit", { event: "vote", ack: true, timeout: 2000 });
    assert.deepEqual(by(rcAll.acks), names, "roomcast emit with ack to all");

    // A client that never answers: both sides time out and report what did arrive, from both nodes.
    const mute = await join(await nodeClient(s, "mute"), room);
    mute.socket.on("vote", () => {});
    const mute2 = await join(await rcClient(s, "mute2"), room);
    mute2.socket.on("vote", () => {});
    await assert.rejects(node.io.to(room).timeout(800).emitWithAck("vote"), (e) => {
      assert.match(e.message, /timed out/);
      assert.deepEqual(by(e.responses), names, "acks that arrived before the Node timeout");
      return true;
    });
    const res = await api(rc(), "emit", { rooms: [room], event: "vote", ack: true, timeout: 800 });
    assert.equal(res.status, 504, `roomcast emit with ack and a mute client: HTTP ${res.status} ${res.text}`);
    assert.equal(res.json().ok, false);
    assert.deepEqual(by(res.json().acks), names, "acks that arrived before the roomcast timeout");
  });

  scenario("socketsJoin / socketsLeave / disconnectSockets across nodes", async (s) => {
    const rc1 = await join(await rcClient(s, "rc1"), "j-a");
    const rc2 = await join(await rcClient(s, "rc2"), "j-a");
    const rc3 = await rcClient(s, "rc3");
    const nd1 = await join(await nodeClient(s, "nd1"), "j-a");
    const nd2 = await nodeClient(s, "nd2");
    const nd3 = await nodeClient(s, "nd3");
    const all = [rc1, rc2, rc3, nd1, nd2, nd3];
    const settle = async (what, get, want) => {
      let last;
      await waitFor(async () => { last = await get(); return JSON.stringify(last) === JSON.stringify(want); },
        { timeout: 3000, what: `${what}: want ${JSON.stringify(want)}, last ${JSON.stringify(last)}` });
    };
    const rcView = (room) => async () => Object.keys((await rcSockets(rc(), { room })).byId).sort();
    const nodeLocal = (room) => async () => Object.keys((await nodeSockets(node.io.local.in(room))).byId).sort();

    // Node: io.in(x).socketsJoin(y) moves roomcast sockets.
    node.io.in("j-a").socketsJoin("j-b");
    await settle("roomcast view of j-b after Node socketsJoin", rcView("j-b"), ids(rc1, rc2, nd1));
    await apiOK(rc(), "emit", { rooms: ["j-b"], event: "jb", data: 1 });
    await fromRc(all);
    delivered(all, "jb", ["rc1", "rc2", "nd1"], [1]);

    node.io.in("j-a").except(rc2.id).socketsLeave("j-b");
    await settle("roomcast view of j-b after Node socketsLeave except rc2", rcView("j-b"), ids(rc2));

    // roomcast: POST /api/v1/rooms moves Node sockets.
    await apiOK(rc(), "rooms", { rooms: ["j-a"], join: ["j-c"] });
    await settle("Node local view of j-c after roomcast join", nodeLocal("j-c"), ids(nd1));
    await settle("cluster view of j-c", async () => Object.keys((await nodeSockets(node.io.in("j-c"))).byId).sort(), ids(rc1, rc2, nd1));
    node.io.to("j-c").emit("jc", 2);
    await fromNode(all);
    delivered(all, "jc", ["rc1", "rc2", "nd1"], [2]);

    await apiOK(rc(), "rooms", { rooms: ["j-a"], except: [nd1.id], join: ["j-d"] });
    await apiOK(rc(), "rooms", { rooms: ["j-c"], leave: ["j-c"] });
    await settle("Node local view of j-c after roomcast leave", nodeLocal("j-c"), []);
    await settle("roomcast view of j-c after leave", rcView("j-c"), []);
    await settle("roomcast view of j-d (join except the Node socket)", rcView("j-d"), ids(rc1, rc2));
    await apiOK(rc(), "rooms", { rooms: [nd3.id], join: ["j-e"] });
    await settle("Node local view of j-e (join by socket id)", nodeLocal("j-e"), ids(nd3));

    // A Node RemoteSocket joins and leaves for a roomcast socket.
    const remote = (await node.io.in(rc3.id).fetchSockets())[0];
    assert.equal(remote?.id, rc3.id);
    remote.join("j-f");
    await settle("roomcast view of j-f after RemoteSocket.join", rcView("j-f"), ids(rc3));
    remote.leave("j-f");
    await settle("roomcast view of j-f after RemoteSocket.leave", rcView("j-f"), []);

    // Disconnects. Each target is a connection with two namespaces, "/" (selected) and
    // "/t-x" (not): without close only the "/" socket goes, with close the whole connection.
    const pair = async (url, name, side, room) => {
      const m = s.manager(url, WS);
      const main = tracked(await connected(m.socket("/")), name, side);
      const extra = tracked(await connected(m.socket("/t-x")), `${name}/t-x`, side);
      await join(main, room);
      return { main, extra };
    };
    const gone = async (c, what) => {
      await waitFor(() => c.disconnects.length > 0, { timeout: 3000, what });
      await sleep(50);
    };
    const rcSoft = await pair(rc().url, "rcSoft", "rc", "dx-1");
    const rcHard = await pair(rc().url, "rcHard", "rc", "dx-2");
    const ndSoft = await pair(node.url, "ndSoft", "node", "dx-3");
    const ndHard = await pair(node.url, "ndHard", "node", "dx-4");

    // Node → roomcast.
    node.io.in("dx-1").disconnectSockets();
    await gone(rcSoft.main, "rcSoft disconnected by Node disconnectSockets()");
    node.io.in("dx-2").disconnectSockets(true);
    await gone(rcHard.extra, "rcHard's connection closed by Node disconnectSockets(true)");
    // roomcast → Node.
    await apiOK(rc(), "disconnect", { rooms: ["dx-3"] });
    await gone(ndSoft.main, "ndSoft disconnected by roomcast /api/v1/disconnect");
    await apiOK(rc(), "disconnect", { rooms: ["dx-4"], close: true });
    await gone(ndHard.extra, "ndHard's connection closed by roomcast /api/v1/disconnect close");

    await fromNode([rc3, nd3]);
    await fromRc([rc3, nd3]);
    const reasons = (p) => [p.main.disconnects, p.extra.disconnects];
    assert.deepEqual(reasons(rcSoft), [["io server disconnect"], []], "roomcast socket, Node disconnectSockets(): [\"/\", \"/t-x\"] reasons");
    assert.deepEqual(reasons(ndSoft), [["io server disconnect"], []], "Node socket, roomcast disconnect: [\"/\", \"/t-x\"] reasons");
    // With close the other namespace's socket goes too (its reason: see the next scenario).
    assert.deepEqual(reasons(rcHard).map((r) => r.length), [1, 1], `roomcast connection, Node disconnectSockets(true): ${JSON.stringify(reasons(rcHard))}`);
    assert.equal(rcHard.main.disconnects[0], "io server disconnect");
    assert.deepEqual(reasons(ndHard).map((r) => r.length), [1, 1], `Node connection, roomcast disconnect close: ${JSON.stringify(reasons(ndHard))}`);
    assert.equal(ndHard.main.disconnects[0], "io server disconnect");
    assert.deepEqual([rc3.disconnects, nd3.disconnects], [[], []], "sockets outside the selected rooms stay connected");
  });

  scenario("disconnect with close tells every namespace of the connection, as Node does", async (s) => {
    const pair = async (url, name, side, room) => {
      const m = s.manager(url, WS);
      const main = tracked(await connected(m.socket("/")), name, side);
      const extra = tracked(await connected(m.socket("/t-y")), `${name}/t-y`, side);
      await join(main, room);
      return { main, extra };
    };
    const reasons = async (p, what) => {
      await waitFor(() => p.main.disconnects.length > 0 && p.extra.disconnects.length > 0, { timeout: 3000, what });
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
    await waitFor(async () => (await node.io.of("/").adapter.serverCount()) === 3, { timeout: 5000, what: "3 nodes on the request channel" });
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

  scenario("cross-implementation latency (diagnostic)", async (s) => {
    const rcPub = await rcClient(s, "rcPub");
    const rcSub = await join(await rcClient(s, "rcSub"), "lat-rn");
    const ndPub = await nodeClient(s, "ndPub");
    const ndSub = await join(await nodeClient(s, "ndSub"), "lat-rn");
    const a = await latency(rcPub.socket, ndSub.socket, "lat-rn", 300);
    s.note(`roomcast publish → Node client, ${a.n} messages one at a time: median ${fmt(a.median)}, p99 ${fmt(a.p99)}, max ${fmt(a.max)}`);
    const b = await latency(ndPub.socket, rcSub.socket, "lat-rn", 300);
    s.note(`Node publish → roomcast client, ${b.n} messages one at a time: median ${fmt(b.median)}, p99 ${fmt(b.p99)}, max ${fmt(b.max)}`);
  });
});

// ---- three roomcast nodes on one Redis -------------------------------------

describe("three roomcast nodes on one Redis", { skip }, () => {
  const MESSAGES = 2000;
  const CLIENTS = 100;
  let redis;
  const args = ["--adapter", "redis", "--log-level", "info"]; // per-message debug logs would dominate
  before(async () => {
    redis = await startRedis();
    args.push("--redis-url", redis.url);
  });
  const nodes = [useServer(args), useServer(args), useServer(args)];
  after(async () => { await redis?.stop(); });

  scenario(`no loss across nodes: ${CLIENTS} clients on 3 nodes, ${MESSAGES} publishes from one node`, { timeout: 90_000 }, async (s) => {
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
      await waitFor(() => members.every((m) => m.count >= MESSAGES), { timeout: 60_000, interval: 50, what: "all messages delivered" });
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
    await waitFor(() => acks.length === MESSAGES, { timeout: 10_000, what: "all publish acks" });
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
