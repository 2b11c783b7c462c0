// Shared pieces of the mixed-cluster suites (adapters redis, redis-sharded
// and redis-streams): one roomcast node and one Node.js socket.io 4.8 node on
// the matching Node adapter, sharing a private Redis.
//
// `crossNodeScenarios(env)` registers the cross-node checks every suite runs
// (room broadcasts, all, except, socket ids, fetchSockets, serverSideEmit with
// acks, broadcast acks, socketsJoin / socketsLeave / disconnectSockets), in
// both directions. `env`:
//   rc()            the roomcast server (lib/server.mjs)
//   node()          the Node node (lib/cluster.mjs startNodeNode)
//   nodeOffsets     Node's clients get a recovery offset as an extra last
//                   argument of broadcasts (connectionStateRecovery on)
//   streamOffsets   offsets are stream entry ids, the same for one broadcast
//                   on every node
//   roomsReady(spec) optional: waits until the cluster routes each room of
//                   spec {room: number of nodes with members} (sharded
//                   dynamic subscriptions); called before cross-node room
//                   broadcasts that follow joins
//   roomcastUid(room) resolves to the uid field of the roomcast node's last
//                   broadcast to `room` as seen on the Redis wire
//   latencyMessages optional: messages per direction of the latency
//                   diagnostic (200)
import assert from "node:assert/strict";
import { scenario, ack, waitFor, sleep, connected } from "./harness.mjs";
import { request, apiEmit } from "./raw.mjs";

export const WS = { transports: ["websocket"] };
export const STREAM_ID = /^[0-9]+-[0-9]+$/;

/**
 * Wraps a connected client: records every event it receives (`got`) and how
 * it disconnected. `side` is "rc" (roomcast) or "node".
 */
export function tracked(socket, name, side) {
  const c = { socket, name, side, id: socket.id, got: [], disconnects: [] };
  socket.onAny((ev, ...args) => c.got.push({ ev, args }));
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  return c;
}

export async function join(c, ...rooms) {
  for (const room of rooms) {
    assert.deepEqual(await ack(c.socket, "join", room), { ok: true }, `${c.name} join ${room}`);
  }
  return c;
}

export async function leave(c, ...rooms) {
  for (const room of rooms) {
    assert.deepEqual(await ack(c.socket, "leave", room), { ok: true }, `${c.name} leave ${room}`);
  }
  return c;
}

export function api(srv, route, body) {
  return request(`${srv.url}/api/v1/${route}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

export async function apiOK(srv, route, body) {
  const res = await api(srv, route, body);
  assert.equal(res.status, 200, `POST /api/v1/${route} ${JSON.stringify(body)}: HTTP ${res.status} ${res.text}`);
  return res.json();
}

/** GET /api/v1/sockets: {id → sorted rooms} plus the raw list. */
export async function rcSockets(srv, { room = [], except = [] } = {}) {
  const q = new URLSearchParams();
  for (const r of [].concat(room)) q.append("room", r);
  for (const e of [].concat(except)) q.append("except", e);
  const res = await request(`${srv.url}/api/v1/sockets?${q}`);
  assert.equal(res.status, 200, `GET /api/v1/sockets?${q}: HTTP ${res.status} ${res.text}`);
  const { sockets } = res.json();
  return { list: sockets, byId: Object.fromEntries(sockets.map((s) => [s.id, [...(s.rooms ?? [])].sort()])) };
}

/** Node fetchSockets → {id → sorted rooms} plus the raw list. */
export async function nodeSockets(op) {
  const list = await op.fetchSockets();
  return { list, byId: Object.fromEntries(list.map((s) => [s.id, [...s.rooms].sort()])) };
}

/** Replaces Buffers / ArrayBuffers / typed arrays with {bin: [bytes]}, recursively. */
export function bytes(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { bin: [...Buffer.from(v instanceof ArrayBuffer ? v : v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))] };
  }
  if (Array.isArray(v)) return v.map(bytes);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytes(x)]));
  return v;
}

export const ids = (...cs) => cs.map((c) => c.id).sort();
export const roomsOf = (c, ...rooms) => [c.id, ...rooms].sort();

let syncSeq = 0;
/**
 * Sends a "sync" marker to every socket from the same origin as the emits
 * under test (same publisher, so it arrives after them) and waits until each
 * client in `clients` has it: afterwards, what a client has not received is
 * not coming.
 */
export async function barrier(clients, emitSync, what = "sync") {
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
 * The checks of what clients received, given which sides append a recovery
 * offset to broadcast events (`offsets.rc`, `offsets.node`) and whether the
 * offsets are stream ids shared by every node (`shared`).
 */
export function receipts({ offsets, shared }) {
  /** The arguments of the first `ev` of c, without the offset (checked). */
  function argsOf(c, ev, n) {
    const a = c.got.find((g) => g.ev === ev)?.args;
    assert.ok(a, `${c.name} received "${ev}"`);
    const withOffset = offsets[c.side];
    assert.equal(a.length, n + (withOffset ? 1 : 0),
      `${c.name} (${c.side}): "${ev}" has ${n} argument(s)${withOffset ? " plus a recovery offset" : ""}: ${JSON.stringify(bytes(a))}`);
    if (withOffset) {
      assert.equal(typeof a[n], "string", `${c.name} (${c.side}): the recovery offset of "${ev}" is a string`);
      if (shared) assert.match(a[n], STREAM_ID, `${c.name} (${c.side}): the recovery offset of "${ev}" is a stream id`);
    }
    return { args: a.slice(0, n), offset: withOffset ? a[n] : undefined };
  }

  /**
   * Asserts that exactly the clients named in `expected` received `ev` once,
   * and the rest not at all; with `args`, that each got exactly those (plus
   * its offset). With shared offsets, one broadcast has one offset everywhere.
   */
  function delivered(clients, ev, expected, args) {
    const got = Object.fromEntries(clients.map((c) => [c.name, c.got.filter((g) => g.ev === ev).length]));
    const want = Object.fromEntries(clients.map((c) => [c.name, expected.includes(c.name) ? 1 : 0]));
    assert.deepEqual(got, want, `who received "${ev}" (name → count)`);
    if (args === undefined) return;
    const seen = {};
    for (const c of clients.filter((x) => expected.includes(x.name))) {
      const r = argsOf(c, ev, args.length);
      assert.deepEqual(r.args, args, `${c.name} (${c.side}): arguments of "${ev}"`);
      if (r.offset !== undefined) seen[c.name] = r.offset;
    }
    if (shared && Object.keys(seen).length > 1) {
      const distinct = [...new Set(Object.values(seen))];
      assert.equal(distinct.length, 1, `"${ev}": one stream offset on every node, got ${JSON.stringify(seen)}`);
    }
  }
  return { argsOf, delivered };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Publishes `n` messages one at a time from `pub` to `room`, timing their arrival at `sub`. */
export async function latency(pub, sub, room, n) {
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

export const fmt = (ms) => `${ms.toFixed(2)} ms`;

/**
 * One connection (a Manager of scope `s`) with two namespaces: "/" (`main`,
 * which joins `room`) and `extraNsp` (`extra`), both tracked.
 */
export async function twoNamespaces(s, url, name, side, room, extraNsp) {
  const m = s.manager(url, WS);
  const main = tracked(await connected(m.socket("/")), name, side);
  const extra = tracked(await connected(m.socket(extraNsp)), `${name}${extraNsp}`, side);
  await join(main, room);
  return { main, extra };
}

/** Registers the cross-node scenarios (see the top of this file). */
export function crossNodeScenarios(env) {
  const { rc, node } = env;
  const roomsReady = env.roomsReady ?? (async () => {});
  const { delivered, argsOf } = receipts({ offsets: { rc: true, node: !!env.nodeOffsets }, shared: !!env.streamOffsets });

  const rcClient = async (s, name, opts = {}) => tracked(await s.client(rc().url, { ...WS, ...opts }), name, "rc");
  const nodeClient = async (s, name, opts = {}) => tracked(await s.client(node().url, { ...WS, ...opts }), name, "node");
  const fromNode = (clients) => barrier(clients, (t) => node().io.emit("sync", t), "Node node");
  const fromRc = (clients) => barrier(clients, async (t) => {
    const res = await apiEmit(rc(), { event: "sync", data: t });
    assert.equal(res.status, 200, res.text);
  }, "roomcast");

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
    await roomsReady({ [r1]: 2, [r2]: 2 });
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
    node().io.to(r1).emit("e3", { n: 3 }, "second", 3.5, null, true);
    await fromNode(all);
    delivered(all, "e3", ["rcA", "rcB", "ndA", "ndB"], [{ n: 3 }, "second", 3.5, null, true]);

    // roomcast HTTP API to the room.
    await apiOK(rc(), "emit", { rooms: [r1], event: "e4", data: { n: 4 } });
    await fromRc(all);
    delivered(all, "e4", ["rcA", "rcB", "ndA", "ndB"], [{ n: 4 }]);

    // An event without arguments (only the offset, where there is one).
    node().io.to(r1).emit("e5");
    await apiOK(rc(), "emit", { rooms: [r1], event: "e6" });
    await fromNode(all);
    await fromRc(all);
    delivered(all, "e5", ["rcA", "rcB", "ndA", "ndB"], []);
    delivered(all, "e6", ["rcA", "rcB", "ndA", "ndB"], []);

    // Binary arguments cross in both directions.
    node().io.to(r1).emit("b1", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
    await fromNode(all);
    assert.deepEqual(await ack(cs.rcA.socket, "publish", { room: r1, event: "b2", data: { buf: Uint8Array.from([9, 8, 0, 255]) } }), { ok: true });
    await fromRc(all);
    delivered(all, "b1", ["rcA", "rcB", "ndA", "ndB"]);
    delivered(all, "b2", ["rcB", "ndA", "ndB"]);
    for (const c of [cs.rcA, cs.rcB, cs.ndA, cs.ndB]) {
      assert.deepEqual(bytes(argsOf(c, "b1", 2).args), [{ bin: [1, 2, 3] }, { nested: { bin: [4] } }], `${c.name}: binary arguments of b1 (from the Node node)`);
    }
    for (const c of [cs.rcB, cs.ndA, cs.ndB]) {
      assert.deepEqual(bytes(argsOf(c, "b2", 1).args), [{ buf: { bin: [9, 8, 0, 255] } }], `${c.name}: binary argument of b2 (from roomcast)`);
    }
  });

  scenario("broadcast to all and to several rooms, both ways", async (s) => {
    const { r1, r2, all } = await population(s, "ba");
    node().io.emit("all1", "from node");
    await fromNode(all);
    delivered(all, "all1", all.map((c) => c.name), ["from node"]);

    await apiOK(rc(), "emit", { event: "all2", data: "from roomcast" });
    await fromRc(all);
    delivered(all, "all2", all.map((c) => c.name), ["from roomcast"]);

    // Several rooms: a socket in both gets it once.
    node().io.to([r1, r2]).emit("multi1", 1);
    await fromNode(all);
    delivered(all, "multi1", ["rcA", "rcB", "rcC", "ndA", "ndB", "ndC"], [1]);

    await apiOK(rc(), "emit", { rooms: [r1, r2], event: "multi2", data: 2 });
    await fromRc(all);
    delivered(all, "multi2", ["rcA", "rcB", "rcC", "ndA", "ndB", "ndC"], [2]);
  });

  scenario("except a room and except a socket id, both ways", async (s) => {
    const { r1, r2, cs, all } = await population(s, "ex");
    node().io.to(r1).except(r2).emit("x1", "a");
    await fromNode(all);
    delivered(all, "x1", ["rcA", "ndA"], ["a"]);

    await apiOK(rc(), "emit", { rooms: [r1], except: [r2], event: "x2", data: "b" });
    await fromRc(all);
    delivered(all, "x2", ["rcA", "ndA"], ["b"]);

    node().io.to(r1).except(cs.rcA.id).emit("x3", "c");
    await fromNode(all);
    delivered(all, "x3", ["rcB", "ndA", "ndB"], ["c"]);

    await apiOK(rc(), "emit", { rooms: [r1], except: [cs.ndA.id], event: "x4", data: "d" });
    await fromRc(all);
    delivered(all, "x4", ["rcA", "rcB", "ndB"], ["d"]);

    // Everyone except a room.
    node().io.except(r2).emit("x5", "e");
    await fromNode(all);
    delivered(all, "x5", ["rcA", "rcD", "ndA", "ndD"], ["e"]);

    await apiOK(rc(), "emit", { except: [r2, cs.ndD.id], event: "x6", data: "f" });
    await fromRc(all);
    delivered(all, "x6", ["rcA", "rcD", "ndA"], ["f"]);
  });

  scenario("emit to a single socket id on the other node", async (s) => {
    const { cs, all } = await population(s, "sid");
    node().io.to(cs.rcC.id).emit("d1", { to: "rcC" });
    await fromNode(all);
    delivered(all, "d1", ["rcC"], [{ to: "rcC" }]);

    await apiOK(rc(), "emit", { rooms: [cs.ndC.id], event: "d2", data: { to: "ndC" } });
    await fromRc(all);
    delivered(all, "d2", ["ndC"], [{ to: "ndC" }]);

    // roomcast's hub reserves socket-id rooms: a client cannot publish into
    // another socket's private room (README "Security").
    const refused = await ack(cs.rcD.socket, "publish", { room: cs.ndD.id, event: "d3", data: "hi ndD" });
    assert.match(String(refused?.error), /socket id/, `roomcast hub publish to a socket id: ${JSON.stringify(refused)}`);

    // The Node test node's hub still allows it; roomcast delivers what crosses the backplane.
    assert.deepEqual(await ack(cs.ndD.socket, "publish", { room: cs.rcD.id, event: "d4", data: "hi rcD" }), { ok: true });
    await fromNode(all);
    delivered(all, "d4", ["rcD"], ["hi rcD"]);

    // A Node RemoteSocket for a roomcast socket: emit goes to that socket only.
    const remote = (await node().io.in(cs.rcB.id).fetchSockets()).find((x) => x.id === cs.rcB.id);
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
    const inRoom = await nodeSockets(node().io.in(room));
    assert.deepEqual(inRoom.byId, { [rc1.id]: roomsOf(rc1, room), [nd1.id]: roomsOf(nd1, room, "fs-other") },
      "Node io.in(room).fetchSockets(): id → rooms");
    const remote = inRoom.list.find((x) => x.id === rc1.id);
    assert.equal(typeof remote.handshake, "object", "RemoteSocket.handshake of a roomcast socket is an object");
    assert.deepEqual(remote.handshake?.auth, { tag: "rc1" }, "RemoteSocket.handshake.auth of a roomcast socket");

    const except = await nodeSockets(node().io.in(room).except(rc1.id));
    assert.deepEqual(Object.keys(except.byId), [nd1.id], "Node io.in(room).except(roomcast id).fetchSockets()");

    const everyone = await nodeSockets(node().io);
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
      answers = await node().io.serverSideEmitWithAck("roomcast:ping");
      return answers.length === 1 && answers[0]?.sockets === rcs.length;
    }, { timeout: 5000, interval: 100, what: `roomcast:ping answering sockets=${rcs.length} (last: ${JSON.stringify(answers)})` });
    assert.equal(typeof answers[0].node, "string");
    assert.ok(answers[0].node.length > 0, "roomcast:ping names the node");
    assert.deepEqual(Object.keys(answers[0]).sort(), ["node", "sockets"]);

    // The node id is roomcast's uid on the wire.
    await apiOK(rc(), "emit", { rooms: ["sse-nobody"], event: "probe" });
    assert.equal(answers[0].node, await env.roomcastUid("sse-nobody"), "roomcast:ping's node is roomcast's uid on the Redis wire");

    // roomcast → Node: POST /api/v1/server-emit with ack.
    const seen = [];
    const onX = (...args) => {
      seen.push(args.map((a) => (typeof a === "function" ? "<ack>" : a)));
      const cb = args.at(-1);
      if (typeof cb === "function") cb({ from: "node", sockets: node().io.of("/").sockets.size });
    };
    const onEcho = (...args) => { const cb = args.pop(); cb({ echo: args }); };
    const plain = [];
    const onPlain = (...args) => plain.push(args);
    node().io.on("x", onX);
    node().io.on("x-echo", onEcho);
    node().io.on("x-plain", onPlain);
    s.defer(() => { node().io.off("x", onX); node().io.off("x-echo", onEcho); node().io.off("x-plain", onPlain); });

    const r1 = await apiOK(rc(), "server-emit", { event: "x", ack: true });
    assert.deepEqual(r1, { ok: true, responses: [{ from: "node", sockets: node().io.of("/").sockets.size }] }, "server-emit x with ack");
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
        ballots.push({ by: c.name, args });
        cb({ by: c.name });
      });
    }
    const names = voters.map((c) => c.name).sort();
    const by = (acks) => acks.map((a) => a?.by).sort();

    // To a room (a broadcast with ack goes to every node, whatever the room).
    let t0 = Date.now();
    const nodeRoom = await node().io.to(room).timeout(2000).emitWithAck("vote", { q: 1 });
    s.note(`Node io.to(room).timeout(2000).emitWithAck: ${nodeRoom.length} acks in ${Date.now() - t0} ms`);
    assert.deepEqual(by(nodeRoom), names, "Node emitWithAck to the room: one ack per client of both nodes");

    t0 = Date.now();
    const rcRoom = await apiOK(rc(), "emit", { rooms: [room], event: "vote", data: { q: 2 }, ack: true, timeout: 2000 });
    s.note(`roomcast POST /api/v1/emit ack to the room: ${rcRoom.acks?.length} acks in ${Date.now() - t0} ms`);
    assert.equal(rcRoom.ok, true);
    assert.deepEqual(by(rcRoom.acks), names, "roomcast emit with ack to the room: one ack per client of both nodes");
    // An emit with ack carries no recovery offset on either side: exactly the data.
    assert.deepEqual(ballots.map((b) => JSON.stringify([b.by, b.args])).sort(),
      [...voters.map((c) => JSON.stringify([c.name, [{ q: 1 }]])), ...voters.map((c) => JSON.stringify([c.name, [{ q: 2 }]]))].sort(),
      "each voter got each question once, with exactly its data");

    // To everyone: first the cluster must hold exactly these sockets (earlier scenarios' are closing).
    await waitFor(async () => (await node().io.fetchSockets()).length === voters.length,
      { timeout: 5000, interval: 100, what: `the cluster to hold exactly the ${voters.length} voters` });
    const nodeAll = await node().io.timeout(2000).emitWithAck("vote");
    assert.deepEqual(by(nodeAll), names, "Node io.timeout(2000).emitWithAck to all");
    const rcAll = await apiOK(rc(), "emit", { event: "vote", ack: true, timeout: 2000 });
    assert.deepEqual(by(rcAll.acks), names, "roomcast emit with ack to all");

    // A client that never answers: both sides time out and report what did arrive, from both nodes.
    const mute = await join(await nodeClient(s, "mute"), room);
    mute.socket.on("vote", () => {});
    const mute2 = await join(await rcClient(s, "mute2"), room);
    mute2.socket.on("vote", () => {});
    await assert.rejects(node().io.to(room).timeout(800).emitWithAck("vote"), (e) => {
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
    const nodeLocal = (room) => async () => Object.keys((await nodeSockets(node().io.local.in(room))).byId).sort();

    // Node: io.in(x).socketsJoin(y) moves roomcast sockets.
    node().io.in("j-a").socketsJoin("j-b");
    await settle("roomcast view of j-b after Node socketsJoin", rcView("j-b"), ids(rc1, rc2, nd1));
    await roomsReady({ "j-b": 2 });
    await apiOK(rc(), "emit", { rooms: ["j-b"], event: "jb", data: 1 });
    await fromRc(all);
    delivered(all, "jb", ["rc1", "rc2", "nd1"], [1]);

    node().io.in("j-a").except(rc2.id).socketsLeave("j-b");
    await settle("roomcast view of j-b after Node socketsLeave except rc2", rcView("j-b"), ids(rc2));

    // roomcast: POST /api/v1/rooms moves Node sockets.
    await apiOK(rc(), "rooms", { rooms: ["j-a"], join: ["j-c"] });
    await settle("Node local view of j-c after roomcast join", nodeLocal("j-c"), ids(nd1));
    await settle("cluster view of j-c", async () => Object.keys((await nodeSockets(node().io.in("j-c"))).byId).sort(), ids(rc1, rc2, nd1));
    await roomsReady({ "j-c": 2 });
    node().io.to("j-c").emit("jc", 2);
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
    const remote = (await node().io.in(rc3.id).fetchSockets())[0];
    assert.equal(remote?.id, rc3.id);
    remote.join("j-f");
    await settle("roomcast view of j-f after RemoteSocket.join", rcView("j-f"), ids(rc3));
    remote.leave("j-f");
    await settle("roomcast view of j-f after RemoteSocket.leave", rcView("j-f"), []);

    // Disconnects. Each target is a connection with two namespaces, "/" (selected) and
    // "/t-x" (not): without close only the "/" socket goes, with close the whole connection.
    const pair = (url, name, side, room) => twoNamespaces(s, url, name, side, room, "/t-x");
    const gone = async (c, what) => {
      await waitFor(() => c.disconnects.length > 0, { timeout: 3000, what });
      await sleep(50);
    };
    const rcSoft = await pair(rc().url, "rcSoft", "rc", "dx-1");
    const rcHard = await pair(rc().url, "rcHard", "rc", "dx-2");
    const ndSoft = await pair(node().url, "ndSoft", "node", "dx-3");
    const ndHard = await pair(node().url, "ndHard", "node", "dx-4");

    // Node → roomcast.
    node().io.in("dx-1").disconnectSockets();
    await gone(rcSoft.main, "rcSoft disconnected by Node disconnectSockets()");
    node().io.in("dx-2").disconnectSockets(true);
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
    assert.deepEqual(reasons(rcHard).map((r) => r.length), [1, 1], `roomcast connection, Node disconnectSockets(true): ${JSON.stringify(reasons(rcHard))}`);
    assert.equal(rcHard.main.disconnects[0], "io server disconnect");
    assert.deepEqual(reasons(ndHard).map((r) => r.length), [1, 1], `Node connection, roomcast disconnect close: ${JSON.stringify(reasons(ndHard))}`);
    assert.equal(ndHard.main.disconnects[0], "io server disconnect");
    assert.deepEqual(reasons(rcHard), reasons(ndHard), "a closed connection's namespaces get the same reasons on both implementations");
    assert.deepEqual([rc3.disconnects, nd3.disconnects], [[], []], "sockets outside the selected rooms stay connected");
  });

  scenario("cross-implementation latency (diagnostic)", async (s) => {
    const rcPub = await rcClient(s, "rcPub");
    const rcSub = await join(await rcClient(s, "rcSub"), "lat-rn");
    const ndPub = await nodeClient(s, "ndPub");
    const ndSub = await join(await nodeClient(s, "ndSub"), "lat-rn");
    await roomsReady({ "lat-rn": 2 });
    const n = env.latencyMessages ?? 200;
    const a = await latency(rcPub.socket, ndSub.socket, "lat-rn", n);
    s.note(`roomcast publish → Node client, ${a.n} messages one at a time: median ${fmt(a.median)}, p99 ${fmt(a.p99)}, max ${fmt(a.max)}`);
    const b = await latency(ndPub.socket, rcSub.socket, "lat-rn", n);
    s.note(`Node publish → roomcast client, ${b.n} messages one at a time: median ${fmt(b.median)}, p99 ${fmt(b.p99)}, max ${fmt(b.max)}`);
  });

  return { rcClient, nodeClient, fromNode, fromRc, delivered, argsOf };
}
