// MIXED CLUSTER ON REDIS SHARDED PUB/SUB: one roomcast node
// (--adapter redis-sharded) and one Node.js socket.io 4.8 node on
// @socket.io/redis-adapter createShardedAdapter(pubClient, subClient)
// (node-redis v4, dynamic subscription mode), sharing a private Redis 7.
// The cross-node checks of lib/mixed.mjs in both directions, then the
// dynamic subscriptions: a room's channel socket.io#/#<room># has exactly the
// nodes with members in the room as subscribers (PUBSUB SHARDNUMSUB), and
// both implementations pick the same channel for the same broadcast.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, ack, waitFor, sleep } from "./lib/harness.mjs";
import { TARGET } from "./lib/server.mjs";
import { startRedis, startNodeNode, startMonitor, redisClient, closeRedisClient } from "./lib/cluster.mjs";
import { crossNodeScenarios, tracked, join, leave, apiOK, api, WS } from "./lib/mixed.mjs";

const skip = TARGET !== "roomcast" && "the Redis adapters are roomcast's (TARGET=roomcast only)";
const NAMESPACES = "^/t-[a-z0-9]+$";
const MAIN = "socket.io#/#";
const chan = (room, nsp = "/") => `socket.io#${nsp}#${room}#`;

describe("mixed cluster on Redis sharded pub/sub: roomcast + Node.js socket.io with createShardedAdapter", { skip }, () => {
  let redis, node, monitor, cmd;
  const rcArgs = ["--adapter", "redis-sharded", "--namespaces", NAMESPACES];
  before(async () => {
    redis = await startRedis();
    rcArgs.push("--redis-url", redis.url);
    monitor = await startMonitor(redis.port);
  });
  const rc = useServer(rcArgs);
  before(async () => {
    node = await startNodeNode(redis.url, { adapter: "sharded", namespaces: new RegExp(NAMESPACES), clientName: "node" });
    cmd = await redisClient(redis.url, { name: "test" });
    await waitFor(async () => (await node.io.of("/").adapter.serverCount()) === 2, { what: `2 nodes on ${MAIN}` });
  });
  after(async () => {
    await node?.close();
    await closeRedisClient(cmd);
    await monitor?.close();
  });
  after(async () => { await redis?.stop(); }); // after roomcast (useServer's after hook runs first)

  /** PUBSUB SHARDNUMSUB: {channel → subscribers}. */
  async function shardNumSub(...channels) {
    const out = await cmd.sendCommand(["PUBSUB", "SHARDNUMSUB", ...channels]);
    const r = {};
    for (let i = 0; i < out.length; i += 2) r[String(out[i])] = Number(out[i + 1]);
    return r;
  }
  /** Waits until every room of `spec` {room: count} has `count` subscribers on its channel (namespace "/"). */
  async function roomsReady(spec, nsp = "/") {
    const want = Object.fromEntries(Object.entries(spec).map(([room, n]) => [chan(room, nsp), n]));
    let last;
    await waitFor(async () => {
      last = await shardNumSub(...Object.keys(want));
      return JSON.stringify(last) === JSON.stringify(want);
    }, { interval: 20, what: `SHARDNUMSUB ${JSON.stringify(want)} (last ${JSON.stringify(last)})` });
  }

  /** CLIENT LIST: "ip:port" → client name. */
  async function names() {
    const out = await cmd.sendCommand(["CLIENT", "LIST"]);
    return Object.fromEntries(out.trim().split("\n").map((l) => {
      const f = Object.fromEntries(l.split(" ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      return [f.addr, f.name];
    }));
  }
  /** The MONITOR entries since `mark` with the sender: "node", "test" or "rc". */
  async function traffic(mark) {
    const byAddr = await names();
    return monitor.since(mark).map((e) => ({
      ...e,
      by: byAddr[e.client] === "node" ? "node" : byAddr[e.client] === "test" ? "test" : byAddr[e.client] === undefined ? "gone" : "rc",
      a: e.args.map((b) => b.toString()),
    }));
  }

  const h = crossNodeScenarios({
    rc,
    node: () => node,
    nodeOffsets: false, // createShardedAdapter without connectionStateRecovery: Node sends no offsets
    streamOffsets: false,
    roomsReady: (spec) => roomsReady(spec),
    async roomcastUid(room) {
      // (on whichever channel: which one is the business of the channel scenario below)
      const of = (e) => { try { return JSON.parse(e.a[1]); } catch { return null; } };
      let hit;
      await waitFor(async () => {
        hit = (await traffic(0)).find((e) => e.cmd === "SPUBLISH" && e.by === "rc" && JSON.stringify(of(e)?.data?.opts?.rooms) === JSON.stringify([room]));
        return hit;
      }, { what: `roomcast's SPUBLISH of a broadcast to ${room}` });
      return of(hit).uid;
    },
  });
  const { rcClient, nodeClient, fromNode, fromRc, delivered } = h;

  scenario("dynamic subscriptions: SHARDNUMSUB of a room's channel counts the nodes with members there", async (s) => {
    const mark = monitor.mark();
    const rcUid = (await node.io.serverSideEmitWithAck("roomcast:ping"))[0]?.node;
    const ndUid = node.io.of("/").adapter.uid;
    assert.equal(typeof rcUid, "string");
    assert.deepEqual(await shardNumSub(MAIN, `${MAIN}${rcUid}#`, `${MAIN}${ndUid}#`),
      { [MAIN]: 2, [`${MAIN}${rcUid}#`]: 1, [`${MAIN}${ndUid}#`]: 1 }, "the namespace channel (both nodes) and each node's response channel");

    const rcA = await rcClient(s, "rcA");
    const rcB = await rcClient(s, "rcB");
    const ndA = await nodeClient(s, "ndA");
    const ndB = await nodeClient(s, "ndB");
    const all = [rcA, rcB, ndA, ndB];

    // Members only on roomcast / only on Node / on both.
    await join(rcA, "dyn-rc");
    await join(ndA, "dyn-nd");
    await join(rcB, "dyn-both");
    await join(ndB, "dyn-both");
    await roomsReady({ "dyn-rc": 1, "dyn-nd": 1, "dyn-both": 2, "dyn-nobody": 0 });
    // Socket ids are rooms without a channel of their own, on both implementations.
    assert.deepEqual(await shardNumSub(chan(rcA.id), chan(ndA.id)), { [chan(rcA.id)]: 0, [chan(ndA.id)]: 0 }, "no channel for a socket id");

    // Who subscribed to what (MONITOR): roomcast to its rooms only, Node to its rooms only.
    let t = await traffic(mark);
    const subs = (by) => t.filter((e) => e.by === by && e.cmd === "SSUBSCRIBE").flatMap((e) => e.a).filter((c) => /^socket\.io#\/#dyn-/.test(c)).sort();
    assert.deepEqual(subs("rc"), [chan("dyn-both"), chan("dyn-rc")], "roomcast's SSUBSCRIBEs to room channels");
    assert.deepEqual(subs("node"), [chan("dyn-both"), chan("dyn-nd")], "Node's SSUBSCRIBEs to room channels");

    // Broadcasts reach the other node through the room's channel.
    await apiOK(rc(), "emit", { rooms: ["dyn-nd"], event: "to-nd" });
    node.io.to("dyn-rc").emit("to-rc");
    await apiOK(rc(), "emit", { rooms: ["dyn-both"], event: "both-from-rc" });
    node.io.to("dyn-both").emit("both-from-node");
    await fromRc(all);
    await fromNode(all);
    delivered(all, "to-nd", ["ndA"], []);
    delivered(all, "to-rc", ["rcA"], []);
    delivered(all, "both-from-rc", ["rcB", "ndB"], []);
    delivered(all, "both-from-node", ["rcB", "ndB"], []);

    // Leaving: the count drops as each node's last member goes.
    await leave(rcB, "dyn-both");
    await roomsReady({ "dyn-both": 1 });
    node.io.to("dyn-both").emit("both-after-rc-left");
    await apiOK(rc(), "emit", { rooms: ["dyn-both"], event: "both-after-rc-left-2" });
    await fromNode(all);
    await fromRc(all);
    delivered(all, "both-after-rc-left", ["ndB"], []);
    delivered(all, "both-after-rc-left-2", ["ndB"], []);
    await leave(ndB, "dyn-both");
    await roomsReady({ "dyn-both": 0 });

    // A second member on one node: one subscription; the first leaving keeps it.
    const rcC = await join(await rcClient(s, "rcC"), "dyn-rc");
    await sleep(100);
    await roomsReady({ "dyn-rc": 1 });
    await leave(rcA, "dyn-rc");
    await sleep(100);
    await roomsReady({ "dyn-rc": 1 });
    // The last member disconnecting unsubscribes.
    rcC.socket.disconnect();
    ndA.socket.disconnect();
    await roomsReady({ "dyn-rc": 0, "dyn-nd": 0 });

    // Remote joins subscribe the node that holds the socket.
    node.io.in(rcB.id).socketsJoin("dyn-remote-rc");
    await apiOK(rc(), "rooms", { rooms: [ndB.id], join: ["dyn-remote-nd"] });
    await roomsReady({ "dyn-remote-rc": 1, "dyn-remote-nd": 1 });
    t = await traffic(mark);
    assert.ok(t.some((e) => e.by === "rc" && e.cmd === "SSUBSCRIBE" && e.a.includes(chan("dyn-remote-rc"))), "roomcast subscribed after Node's socketsJoin");
    assert.ok(t.some((e) => e.by === "node" && e.cmd === "SSUBSCRIBE" && e.a.includes(chan("dyn-remote-nd"))), "Node subscribed after roomcast's join");
    node.io.in(rcB.id).socketsLeave("dyn-remote-rc");
    await apiOK(rc(), "rooms", { rooms: [ndB.id], leave: ["dyn-remote-nd"] });
    await roomsReady({ "dyn-remote-rc": 0, "dyn-remote-nd": 0 });

    // Another namespace: its rooms have channels under its own name.
    const rcNs = tracked(await s.client(`${rc().url}/t-dyn`, WS), "rcNs", "rc");
    const ndNs = tracked(await s.client(`${node.url}/t-dyn`, WS), "ndNs", "node");
    await join(rcNs, "dyn-ns");
    await roomsReady({ "dyn-ns": 1 }, "/t-dyn");
    await roomsReady({ "dyn-ns": 0 });
    node.io.of("/t-dyn").to("dyn-ns").emit("ns-hello", 1);
    await waitFor(() => rcNs.got.some((g) => g.ev === "ns-hello"), { what: "ns-hello at the roomcast socket of /t-dyn" });
    await join(ndNs, "dyn-ns");
    await roomsReady({ "dyn-ns": 2 }, "/t-dyn");

    // Everything unsubscribed in the end (none of the dyn-* rooms of "/" has members).
    await roomsReady({ "dyn-rc": 0, "dyn-nd": 0, "dyn-both": 0, "dyn-remote-rc": 0, "dyn-remote-nd": 0 });
    t = await traffic(mark);
    const unsubs = (by) => t.filter((e) => e.by === by && e.cmd === "SUNSUBSCRIBE").flatMap((e) => e.a).filter((c) => /^socket\.io#\/#dyn-/.test(c)).sort();
    s.note(`SUNSUBSCRIBE of room channels: roomcast ${JSON.stringify(unsubs("rc"))}; Node ${JSON.stringify(unsubs("node"))}`);
  });

  scenario("the same broadcast goes on the same channel from both implementations", async (s) => {
    const twenty = "abcdefghij0123456789"; // a room name that looks like a socket id (20 characters)
    // roomcast's hub reserves the socket-id shape for clients; the HTTP API (trusted) may still join it.
    const rcA = await join(await rcClient(s, "rcA"), "ch-a");
    await apiOK(rc(), "rooms", { rooms: [rcA.id], join: [twenty] });
    const ndA = await join(await nodeClient(s, "ndA"), "ch-a", twenty);
    const all = [rcA, ndA];
    await roomsReady({ "ch-a": 2 });
    const mark = monitor.mark();

    const cases = [
      ["one room", (ev) => node.io.to("ch-a").emit(ev), (ev) => apiOK(rc(), "emit", { rooms: ["ch-a"], event: ev })],
      ["one room, except a room", (ev) => node.io.to("ch-a").except("ch-x").emit(ev), (ev) => apiOK(rc(), "emit", { rooms: ["ch-a"], except: ["ch-x"], event: ev })],
      ["two rooms", (ev) => node.io.to(["ch-a", "ch-b"]).emit(ev), (ev) => apiOK(rc(), "emit", { rooms: ["ch-a", "ch-b"], event: ev })],
      ["everyone", (ev) => node.io.emit(ev), (ev) => apiOK(rc(), "emit", { event: ev })],
      ["a socket id", (ev) => node.io.to(rcA.id).emit(ev), (ev) => apiOK(rc(), "emit", { rooms: [ndA.id], event: ev })],
      ["a 20-character room", (ev) => node.io.to(twenty).emit(ev), (ev) => apiOK(rc(), "emit", { rooms: [twenty], event: ev })],
      ["one room, with ack", (ev) => node.io.to("ch-a").timeout(500).emitWithAck(ev).catch(() => {}),
        (ev) => api(rc(), "emit", { rooms: ["ch-a"], event: ev, ack: true, timeout: 500 })],
    ];
    for (const [i, [, fromNd, fromRcFn]] of cases.entries()) {
      await fromNd(`ch${i}-node`);
      await fromRcFn(`ch${i}-rc`);
    }
    await fromNode(all);
    await fromRc(all);
    await sleep(100);
    const t = (await traffic(mark)).filter((e) => e.cmd === "SPUBLISH");
    const channelOf = (by, ev) => {
      const hits = t.filter((e) => e.by === by).filter((e) => {
        try { return JSON.parse(e.a[1]).data?.packet?.data?.[0] === ev; } catch { return false; }
      });
      return hits.map((e) => e.a[0]);
    };
    const table = {};
    for (const [i, [name]] of cases.entries()) {
      table[name] = { node: channelOf("node", `ch${i}-node`), rc: channelOf("rc", `ch${i}-rc`) };
    }
    s.note(`channels: ${JSON.stringify(table)}`);
    // The 20-character room: Node subscribes to its channel (create-room, public room) though
    // no one publishes there; show what each implementation does.
    s.note(`SHARDNUMSUB of the 20-character room's channel: ${JSON.stringify(await shardNumSub(chan(twenty)))}`);
    assert.deepEqual(table, {
      "one room": { node: [chan("ch-a")], rc: [chan("ch-a")] },
      "one room, except a room": { node: [chan("ch-a")], rc: [chan("ch-a")] },
      "two rooms": { node: [MAIN], rc: [MAIN] },
      "everyone": { node: [MAIN], rc: [MAIN] },
      "a socket id": { node: [MAIN], rc: [MAIN] },
      "a 20-character room": { node: [MAIN], rc: [MAIN] },
      "one room, with ack": { node: [MAIN], rc: [MAIN] },
    }, "the channel of each broadcast, per implementation");
    // And everyone meant got each (the acks' events are answered by nobody: not checked here).
    delivered(all, "ch0-node", ["rcA", "ndA"], []);
    delivered(all, "ch0-rc", ["rcA", "ndA"], []);
    delivered(all, "ch5-node", ["rcA", "ndA"], []);
    delivered(all, "ch5-rc", ["rcA", "ndA"], []);
    delivered(all, "ch4-node", ["rcA"], []);
    delivered(all, "ch4-rc", ["ndA"], []);
  });

  scenario("a room's traffic does not reach a node without members there (dynamic mode)", async (s) => {
    const rcA = await join(await rcClient(s, "rcA"), "iso-rc");
    const ndA = await join(await nodeClient(s, "ndA"), "iso-nd");
    const all = [rcA, ndA];
    await roomsReady({ "iso-rc": 1, "iso-nd": 1 });
    // SPUBLISH answers how many subscribers got the message: one node per room channel.
    const raw = (room) => JSON.stringify({ uid: "sniffer", nsp: "/", type: 3, data: { packet: { type: 2, data: ["raw"], nsp: "/" }, opts: { rooms: [room], except: [], flags: {} } } });
    const r1 = await cmd.sendCommand(["SPUBLISH", chan("iso-rc"), raw("iso-rc")]);
    const r2 = await cmd.sendCommand(["SPUBLISH", chan("iso-nd"), raw("iso-nd")]);
    assert.deepEqual([Number(r1), Number(r2)], [1, 1], "one receiving node per room channel");
    // A foreign node's broadcast on the room channel (Node's wire format) reaches the member.
    await waitFor(() => rcA.got.some((g) => g.ev === "raw") && ndA.got.some((g) => g.ev === "raw"),
      { what: "the raw SPUBLISHed broadcast at both members" });

    // What the Node node's adapter receives from Redis, by channel.
    const mark = monitor.mark();
    const adapter = node.io.of("/").adapter;
    const heard = [];
    const orig = adapter.onRawMessage;
    adapter.onRawMessage = function (message, channel) {
      try {
        const m = message[0] === 0x7b ? JSON.parse(message.toString()) : null;
        heard.push({ channel: channel.toString(), type: m?.type, rooms: m?.data?.opts?.rooms, ev: m?.data?.packet?.data?.[0] });
      } catch { /* recorded only when JSON */ }
      return orig.call(this, message, channel);
    };
    s.defer(() => { adapter.onRawMessage = orig; });

    // roomcast broadcasts to its own room, through the API and the hub: the Node node, with no
    // member there, should not hear of them (Node publishes such a broadcast on socket.io#/#iso-rc#).
    await apiOK(rc(), "emit", { rooms: ["iso-rc"], event: "iso-api" });
    const rcB = await rcClient(s, "rcB");
    assert.deepEqual(await ack(rcB.socket, "publish", { room: "iso-rc", event: "iso-hub" }), { ok: true });
    await fromRc([...all, rcB]);
    delivered([...all, rcB], "iso-api", ["rcA"], []);
    delivered([...all, rcB], "iso-hub", ["rcA"], []);
    const spub = (await traffic(mark)).filter((e) => e.cmd === "SPUBLISH" && /iso-(api|hub)/.test(e.a[1]));
    for (const e of spub) s.note(`MONITOR (${e.by}): SPUBLISH ${e.a[0]} ${e.a[1]}`);
    const leaked = heard.filter((x) => x.ev === "iso-api" || x.ev === "iso-hub");
    assert.deepEqual(leaked, [], "roomcast's broadcasts to a room without members on the Node node, as the Node node's adapter received them");
  });
});
