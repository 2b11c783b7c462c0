#!/usr/bin/env node
// What tenant sharding saves on the backplane: 4 roomcast nodes behind a
// real balancer (HAProxy by default), 40 tenants of 5 WebSocket clients, each
// tenant's first client publishing a fixed number of messages to its
// tenant's room. For each adapter, routing by tenant (consistent hash, the
// shipped config) against round robin:
//   - backplane messages each node receives from Redis (pub/sub messages
//     and stream entries, counted on the wire by a proxy between the node
//     and Redis, which parses the Redis protocol), and bytes;
//   - Redis CPU (INFO cpu, user + sys) during the publish phase;
//   - deliveries: every recipient must get every message of its tenant once,
//     in order (lost / duplicated / out of order are reported).
// Bounded: a fixed count of messages, every wait has a time limit.
//
// usage: node test/lb/bench.mjs [--adapters redis,redis-sharded,redis-streams]
//        [--balancer nginx|haproxy] [--tenants 40] [--clients 5] [--messages 25]
//        [--groups 4,2 (tenant routing onto that many groups of nodes; HAProxy)]
//        [--base-port 21001] [--json]
// Needs bin/roomcast (make build), nginx or haproxy, redis-server.
import net from "node:net";
import { parseArgs } from "node:util";
import { io } from "socket.io-client";
import { startServer } from "../node/lib/server.mjs";
import { startRedis, redisClient, closeRedisClient } from "../node/lib/cluster.mjs";
import { startBalancer, waitRoutable } from "./lib.mjs";
import { respCounter } from "./resp.mjs";

const { values: opt } = parseArgs({
  options: {
    adapters: { type: "string", default: "redis,redis-sharded,redis-streams" },
    balancer: { type: "string", default: "haproxy" },
    tenants: { type: "string", default: "40" },
    clients: { type: "string", default: "5" },
    messages: { type: "string", default: "25" },
    nodes: { type: "string", default: "4" },
    groups: { type: "string", default: "" },
    "base-port": { type: "string", default: "21001" },
    json: { type: "boolean", default: false },
  },
});
const TENANTS = Number(opt.tenants), CLIENTS = Number(opt.clients), MESSAGES = Number(opt.messages), NODES = Number(opt.nodes);
const BASE = Number(opt["base-port"]);
const WAIT = 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`${a.join(" ")}\n`);

async function until(cond, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

/** A TCP proxy to Redis counting what Redis sends through it. */
async function countingProxy(redisPort) {
  const counter = respCounter();
  const open = new Set();
  const conns = [];
  const server = net.createServer((down) => {
    const up = net.connect({ host: "127.0.0.1", port: redisPort });
    const perConn = respCounter(); // one parser per connection, totals in `counter`
    conns.push(perConn);
    open.add(down); open.add(up);
    const end = () => { down.destroy(); up.destroy(); open.delete(down); open.delete(up); };
    for (const s of [down, up]) { s.on("error", end); s.on("close", end); }
    down.pipe(up);
    up.on("data", (d) => {
      const before = [perConn.pubsub, perConn.entries];
      perConn.feed(d);
      counter.pubsub += perConn.pubsub - before[0];
      counter.entries += perConn.entries - before[1];
      counter.errors = Math.max(counter.errors, perConn.errors);
      counter.bytes += d.length;
      down.write(d);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    counter,
    conns,
    close: () => { for (const s of open) s.destroy(); return new Promise((r) => server.close(r)); },
  };
}

async function redisCpu(client) {
  const info = await client.info("cpu");
  const v = (k) => Number(new RegExp(`^${k}:(\\S+)`, "m").exec(info)?.[1] ?? 0);
  return v("used_cpu_user") + v("used_cpu_sys");
}

/** Calls per command (INFO commandstats). */
async function commandCalls(client) {
  const info = await client.info("commandstats");
  const out = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function openConnections(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^roomcast_connections_open (\S+)$/m.exec(text)?.[1] ?? 0);
}

function connect(url, tenant) {
  const socket = io(url, { transports: ["websocket"], query: { tenant }, forceNew: true, reconnection: false, timeout: WAIT });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => reject(new Error(`connect ${tenant}: ${e.message}`)));
  });
}

async function run(adapter, routing, groups = NODES) {
  const redis = await startRedis();
  const ctl = await redisClient(redis.url);
  const proxies = [], nodes = [], sockets = [];
  let lb;
  try {
    for (let i = 0; i < NODES; i++) {
      const p = await countingProxy(redis.port);
      proxies.push(p);
      nodes.push(await startServer(["--addr", `127.0.0.1:${BASE + i}`, "--log-level", "info", "--adapter", adapter,
        "--redis-url", `redis://127.0.0.1:${p.port}/0`, "--recovery-window", "0"]));
    }
    lb = await startBalancer(opt.balancer, nodes.map((n) => n.port), { balance: routing, groupSize: NODES / groups });
    // nginx has no active health checks (nothing to wait for), and its round
    // robin would send a probe's close to another node.
    if (!(opt.balancer === "nginx" && routing === "roundrobin")) await waitRoutable(lb, nodes.map((n) => n.port));

    // 40 tenants × 5 clients, all in their tenant's room.
    const tenants = [];
    for (let t = 0; t < TENANTS; t++) {
      const name = `tenant-${t}`;
      const room = `${name}:news`;
      const cs = [];
      for (let k = 0; k < CLIENTS; k++) {
        const socket = await connect(lb.url, name);
        sockets.push(socket);
        const c = { socket, got: [] };
        socket.on("m", (d) => c.got.push(d));
        const r = await socket.timeout(WAIT).emitWithAck("join", room);
        if (!r?.ok) throw new Error(`join ${room}: ${JSON.stringify(r)}`);
        cs.push(c);
      }
      tenants.push({ name, room, cs });
    }
    const conns = await Promise.all(nodes.map((n) => openConnections(n.url)));

    // Warm-up: one message per tenant, delivered to everyone (dynamic
    // subscriptions in place), then the counters start from zero.
    const publish = (t, data) => t.cs[0].socket.timeout(WAIT).emitWithAck("publish", { room: t.room, event: "m", data });
    await Promise.all(tenants.map((t) => publish(t, { warm: true })));
    await until(() => tenants.every((t) => t.cs.slice(1).every((c) => c.got.length === 1)), "warm-up delivered");
    await sleep(300);
    for (const t of tenants) for (const c of t.cs) c.got.length = 0;
    for (const p of proxies) p.counter.reset();
    if (process.env.BENCH_DEBUG) {
      const ch = await ctl.sendCommand(["PUBSUB", "SHARDCHANNELS"]);
      const nums = await ctl.sendCommand(["PUBSUB", "SHARDNUMSUB", ...ch]);
      log(`  shard channels: ${ch.length}: ${JSON.stringify(nums)}`);
    }
    const stats0 = await commandCalls(ctl);
    const cpu0 = await redisCpu(ctl);
    const t0 = performance.now();

    for (let r = 0; r < MESSAGES; r++) {
      const acks = await Promise.all(tenants.map((t) => publish(t, { r })));
      if (!acks.every((a) => a?.ok)) throw new Error(`publish refused: ${JSON.stringify(acks.find((a) => !a?.ok))}`);
    }
    const expected = TENANTS * (CLIENTS - 1) * MESSAGES;
    const received = () => tenants.reduce((n, t) => n + t.cs.slice(1).reduce((m, c) => m + c.got.length, 0), 0);
    try { await until(() => received() >= expected, "every delivery", 30_000); } catch { /* reported as lost */ }
    const elapsed = performance.now() - t0;
    // A node delivers to its own clients without Redis, so its copies of
    // its own publications may still be on the way: count until every
    // node's count has not moved for 1 s (at most 30 s).
    const snapshot = () => proxies.map((p) => p.counter.pubsub + p.counter.entries + p.counter.bytes).join();
    for (let last = snapshot(), since = Date.now(), end = Date.now() + 30_000; Date.now() - since < 1000 && Date.now() < end;) {
      await sleep(100);
      const now = snapshot();
      if (now !== last) { last = now; since = Date.now(); }
    }
    const cpu = await redisCpu(ctl) - cpu0;
    const stats1 = await commandCalls(ctl);
    const commands = Object.fromEntries(Object.entries(stats1).map(([k, v]) => [k, v - (stats0[k] ?? 0)]).filter(([k, v]) => v > 0 && !["info"].includes(k)));
    if (process.env.BENCH_DEBUG) log(`  pending: ${proxies.map((p) => p.conns.map((c) => `${c.pending}:${c.pubsub}`).join(",")).join(" | ")}`);

    let lost = 0, dup = 0, disorder = 0;
    for (const t of tenants) {
      for (const c of t.cs.slice(1)) {
        const rs = c.got.map((d) => d.r);
        lost += MESSAGES - new Set(rs).size;
        dup += rs.length - new Set(rs).size;
        if (rs.some((x, i) => i > 0 && x < rs[i - 1])) disorder++;
      }
    }
    return {
      adapter, routing: routing === "tenant" && groups !== NODES ? `tenant, ${groups} groups` : routing,
      connections: conns,
      perNode: proxies.map((p) => p.counter.pubsub + p.counter.entries),
      bytes: proxies.map((p) => p.counter.bytes),
      parseErrors: proxies.reduce((n, p) => n + p.counter.errors, 0),
      publishes: TENANTS * MESSAGES,
      expected, lost, dup, disorder,
      redisCpuMs: Math.round(cpu * 1000),
      redisCommands: commands,
      seconds: Number((elapsed / 1000).toFixed(2)),
    };
  } finally {
    for (const s of sockets) s.disconnect();
    await lb?.stop();
    for (const n of nodes) await n.stop();
    for (const p of proxies) await p.close();
    await closeRedisClient(ctl);
    await redis.stop();
  }
}

const results = [];
for (const adapter of opt.adapters.split(",")) {
  const groupings = opt.groups ? opt.groups.split(",").map(Number) : [NODES];
  for (const [routing, groups] of [["roundrobin", NODES], ...groupings.map((g) => ["tenant", g])]) {
    if (!(groups >= 1 && NODES % groups === 0)) throw new Error(`--groups ${groups}: must divide --nodes ${NODES}`);
    log(`${adapter}, ${routing} routing (${groups} groups) through ${opt.balancer} ...`);
    results.push(await run(adapter, routing, groups));
    const r = results.at(-1);
    log(`  connections/node ${r.connections.join("/")}, backplane msgs/node ${r.perNode.join("/")}, lost ${r.lost}, parse errors ${r.parseErrors}, Redis CPU ${r.redisCpuMs} ms, commands ${JSON.stringify(r.redisCommands)}`);
  }
}

if (opt.json) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const row = (c) => `| ${c.join(" | ")} |`;
  console.log(`${NODES} nodes behind ${opt.balancer}, ${TENANTS} tenants × ${CLIENTS} WebSocket clients, ${MESSAGES} messages per tenant (${TENANTS * MESSAGES} publishes, ${TENANTS * MESSAGES * (CLIENTS - 1)} deliveries)\n`);
  console.log(row(["adapter", "routing", "clients per node", "backplane msgs per node", "max node vs round robin", "KB per node", "Redis CPU ms", "lost / dup / out of order"]));
  console.log(row(Array(8).fill("---")));
  for (const r of results) {
    const base = results.find((x) => x.adapter === r.adapter && x.routing === "roundrobin");
    const pct = (100 * Math.max(...r.perNode) / Math.max(...base.perNode)).toFixed(0);
    console.log(row([r.adapter, r.routing, r.connections.join(" / "), r.perNode.join(" / "), `${pct}%`,
      r.bytes.map((b) => Math.round(b / 1024)).join(" / "), r.redisCpuMs, `${r.lost} / ${r.dup} / ${r.disorder}`]));
  }
}
process.exit(results.some((r) => r.lost || r.dup) ? 1 : 0);
