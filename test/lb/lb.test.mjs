// BEHIND REAL LOAD BALANCERS: nginx and HAProxy, run from the shipped
// configs (deploy/nginx, deploy/haproxy), in front of three roomcast nodes
// on one private Redis (--adapter redis-streams).
//
// For each balancer:
// - polling-only, WebSocket-only and upgrading socket.io clients, routed by
//   tenant onto all three nodes, join one room, publish and receive;
// - tenant routing is a consistent hash: adding a node moves only keys to
//   it, removing one moves only its keys (measured through the balancer);
// - HAProxy server groups: a tenant stays within its group of nodes;
// - the reconnection harness (reset, recovery) runs through the balancer;
// - a node stopped with SIGTERM: its clients (kept sticky by the
//   balancer's cookie) come back on the other nodes with recovered === true.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { scenario, SAFETY_NET, ack, waitFor, upgraded, sleep } from "../node/lib/harness.mjs";
import { TARGET, ROOT, startServer } from "../node/lib/server.mjs";
import { startRedis } from "../node/lib/cluster.mjs";
import { apiEmit } from "../node/lib/raw.mjs";
import { BALANCERS, startBalancer, waitRoutable, whichNode } from "./lib.mjs";

const skip = TARGET !== "roomcast" && "cluster of roomcast nodes (TARGET=roomcast only)";

const MODES = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"] },
};

/** Open Engine.IO connections of a node, from its /metrics. */
async function openConnections(srv) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = /^roomcast_connections_open (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** One tenant name per node port, found by asking the balancer. */
async function tenantPerNode(lb, ports, tag) {
  const found = new Map();
  for (let i = 0; found.size < ports.length && i < 500; i++) {
    const t = `${tag}-${i}`;
    const n = await whichNode(lb, t);
    if (!found.has(n)) found.set(n, t);
  }
  assert.equal(found.size, ports.length, `${lb.kind}: tenants landing on every node`);
  return found;
}

/** tenant → node for `tenants` through a balancer over `ports` (ids fixed per node). */
async function routes(kind, ports, ids, tenants) {
  const lb = await startBalancer(kind, ports, { ids });
  try {
    await waitRoutable(lb, ports);
    const out = new Map();
    for (const t of tenants) out.set(t, await whichNode(lb, t));
    return out;
  } finally {
    await lb.stop();
  }
}

function harness(url, args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, "test/harness/cli.mjs"), "--url", url, ...args, "--json"],
      { cwd: ROOT, timeout: 8 * SAFETY_NET }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
      });
  });
}

for (const kind of BALANCERS) {
  describe(`behind ${kind}: three nodes, --adapter redis-streams`, { skip }, () => {
    let redis, nodes = [], lb;
    const ports = () => nodes.map((n) => n.port);

    before(async () => {
      redis = await startRedis();
      const args = ["--adapter", "redis-streams", "--redis-url", redis.url, "--recovery-window", "2m", "--drain-window", "500ms"];
      nodes = [await startServer(args), await startServer(args), await startServer(args)];
      lb = await startBalancer(kind, ports());
      await waitRoutable(lb, ports());
    });
    after(async () => {
      await lb?.stop();
      for (const n of nodes) await n.stop();
      await redis?.stop();
    });

    scenario("polling, websocket and upgrading clients on every node join, publish and receive", { timeout: 6 * SAFETY_NET }, async (s) => {
      const tenants = await tenantPerNode(lb, ports(), `${kind}-t`);
      const before = await Promise.all(nodes.map(openConnections));
      const room = `lb-${kind}`;
      const clients = [];
      for (const [mode, opts] of Object.entries(MODES)) {
        for (const [port, tenant] of tenants) {
          const socket = await s.client(lb.url, { ...opts, withCredentials: true, query: { tenant } });
          const c = { name: `${mode}@${port}`, mode, port, socket, got: [] };
          socket.on("m", (d) => c.got.push(d));
          clients.push(c);
        }
      }
      for (const c of clients.filter((x) => x.mode === "upgrade")) await upgraded(c.socket);
      for (const c of clients) assert.deepEqual(await ack(c.socket, "join", room), { ok: true }, `${c.name} joins`);
      // One client per mode on every node: each node holds three more connections.
      const after = await Promise.all(nodes.map(openConnections));
      assert.deepEqual(after.map((n, i) => n - before[i]), [3, 3, 3], "connections per node");

      for (const c of clients) {
        assert.deepEqual(await ack(c.socket, "publish", { room, event: "m", data: c.name }), { ok: true }, `${c.name} publishes`);
      }
      const want = clients.length - 1; // publish-self is off
      await waitFor(() => clients.every((c) => c.got.length >= want), {
        what: `every client receives ${want} messages (${clients.map((c) => `${c.name}:${c.got.length}`).join(" ")})`,
      });
      for (const c of clients) {
        assert.deepEqual([...c.got].sort(), clients.filter((x) => x !== c).map((x) => x.name).sort(), `${c.name} got each other client's message once`);
        assert.equal(c.socket.io.engine.transport.name, c.mode === "polling" ? "polling" : "websocket", `${c.name} transport`);
      }
    });

    scenario("tenant routing: adding a node moves keys only to it, removing one moves only its keys", { timeout: 6 * SAFETY_NET }, async (s) => {
      const tenants = Array.from({ length: 300 }, (_, i) => `acme-${i}`);
      const [p1, p2, p3] = ports();
      const two = await routes(kind, [p1, p2], [1, 2], tenants);
      const three = await routes(kind, [p1, p2, p3], [1, 2, 3], tenants);
      const minus2 = await routes(kind, [p1, p3], [1, 3], tenants);
      const moved = (a, b) => tenants.filter((t) => a.get(t) !== b.get(t));
      const added = moved(two, three);
      const removed = moved(three, minus2);
      assert.deepEqual(added.filter((t) => three.get(t) !== p3), [], "adding a node: every moved tenant moved to the new node");
      assert.deepEqual(removed.filter((t) => three.get(t) !== p2), [], "removing a node: only its tenants moved");
      assert.equal(removed.length, tenants.filter((t) => three.get(t) === p2).length, "removing a node: all of its tenants moved");
      const share = (m, p) => tenants.filter((t) => m.get(t) === p).length;
      s.note(`${kind}: ${tenants.length} tenants; 2 → 3 nodes moved ${added.length} (${(100 * added.length / tenants.length).toFixed(1)}%, ideal 33.3%); ` +
        `3 → 2 nodes moved ${removed.length} (${(100 * removed.length / tenants.length).toFixed(1)}%); ` +
        `shares on 3 nodes ${[p1, p2, p3].map((p) => share(three, p)).join("/")}`);
      assert.ok(added.length > 0 && removed.length > 0, "some tenants moved");
    });

    if (kind === "haproxy") {
      scenario("server groups: a tenant's clients spread over its group's nodes only, and hear each other", { timeout: 6 * SAFETY_NET }, async (s) => {
        const [p1, p2, p3] = ports();
        const grouped = await startBalancer("haproxy", [p1, p2, p3], { groupSize: 2 }); // groups {p1, p2} and {p3}
        s.defer(() => grouped.stop());
        await waitRoutable(grouped, ports());
        const groupOf = (p) => (p === p3 ? "g2" : "g1");
        const byTenant = new Map();
        for (let t = 0; t < 6; t++) {
          const tenant = `grp-${t}`;
          const seen = new Set();
          for (let k = 0; k < 4; k++) seen.add(await whichNode(grouped, tenant));
          byTenant.set(tenant, seen);
          assert.equal(new Set([...seen].map(groupOf)).size, 1, `${tenant}: one group (${[...seen]})`);
        }
        const inG1 = [...byTenant].filter(([, seen]) => groupOf([...seen][0]) === "g1");
        assert.ok(inG1.some(([, seen]) => seen.size === 2), `a tenant of the two-node group uses both nodes: ${JSON.stringify([...byTenant].map(([t, x]) => [t, [...x]]))}`);

        // Polling (cookies keep each session on its node) and WebSocket clients of one tenant.
        const [tenant] = inG1.find(([, seen]) => seen.size === 2);
        const room = `${tenant}:news`;
        const cs = [];
        for (let k = 0; k < 4; k++) {
          const socket = await s.client(grouped.url, { ...(k % 2 ? MODES.websocket : MODES.polling), withCredentials: true, query: { tenant } });
          const c = { name: `c${k}`, socket, got: [] };
          socket.on("m", (d) => c.got.push(d));
          assert.deepEqual(await ack(socket, "join", room), { ok: true });
          cs.push(c);
        }
        for (const c of cs) assert.deepEqual(await ack(c.socket, "publish", { room, event: "m", data: c.name }), { ok: true });
        await waitFor(() => cs.every((c) => c.got.length >= cs.length - 1), { what: "every client hears the others" });
        for (const c of cs) assert.deepEqual([...c.got].sort(), cs.filter((x) => x !== c).map((x) => x.name).sort(), c.name);
      });
    }

    scenario("the reconnection harness runs through the balancer (reset, recovery)", { timeout: 9 * SAFETY_NET }, async (s) => {
      // The harness's clients keep no cookies: WebSocket only, nothing to keep sticky.
      const r = await harness(lb.url, ["--scenario", "reset,recovery", "--transports", "websocket", "--clients", "20"]);
      let results;
      try { results = JSON.parse(r.stdout); } catch { results = null; }
      assert.equal(r.code, 0, `harness exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      const cases = (Array.isArray(results) ? results : results?.results ?? []).map((x) => `${x.scenario}/${x.case ?? x.name}: ${x.status}`);
      s.note(`${kind}: ${cases.join(", ")}`);
      assert.ok(cases.some((c) => /recovery.*pass/i.test(c)), `a recovery case passed: ${cases}`);
    });

    scenario("a node stopped with SIGTERM: its clients come back on the others, recovered", { timeout: 8 * SAFETY_NET }, async (s) => {
      const room = `drain-${kind}`;
      const clients = [];
      // No tenant: the balancer's cookie keeps each polling session on its node.
      for (let i = 0; i < 12; i++) {
        const mode = Object.keys(MODES)[i % 3];
        const socket = s.socket(lb.url, {
          ...MODES[mode], withCredentials: true, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500,
        });
        const c = { name: `${mode}-${i}`, mode, socket, connects: [], got: [] };
        socket.on("connect", () => c.connects.push({ recovered: socket.recovered, id: socket.id }));
        socket.on("m", (d) => c.got.push(d));
        clients.push(c);
      }
      await waitFor(() => clients.every((c) => c.connects.length === 1), { what: "12 clients connected" });
      for (const c of clients.filter((x) => x.mode === "upgrade")) await upgraded(c.socket);
      for (const c of clients) assert.deepEqual(await ack(c.socket, "join", room), { ok: true });

      // A message first: each client then holds a stream offset to recover
      // from (a client that has received nothing has none).
      const from = clients[0];
      assert.equal((await apiEmit(nodes[0], { rooms: [room], event: "m", data: "before" })).status, 200);
      await waitFor(() => clients.every((c) => c.got.includes("before")), { what: "the room receives before the stop" });

      const load = await Promise.all(nodes.map(openConnections));
      const victim = nodes[load.indexOf(Math.max(...load))];
      s.note(`${kind}: connections per node ${load.join("/")}; stopping ${victim.port}`);
      assert.ok(Math.max(...load) > 0);
      const exit = await victim.stop("SIGTERM", SAFETY_NET);
      assert.equal(exit.code, 0, `graceful exit: ${JSON.stringify(exit)}`);
      // Messages while its clients are (perhaps) away: recovered or live, each arrives once, in order.
      const survivor = nodes.find((n) => n !== victim);
      const gap = ["gap-1", "gap-2", "gap-3"];
      for (const g of gap) assert.equal((await apiEmit(survivor, { rooms: [room], event: "m", data: g })).status, 200);

      const moved = () => clients.filter((c) => c.connects.length > 1);
      await waitFor(() => moved().length >= Math.max(...load) && moved().every((c) => c.socket.connected), {
        timeout: 3 * SAFETY_NET, what: `clients of the stopped node back (${moved().length})`,
      });
      for (const c of moved()) {
        assert.deepEqual(c.connects.at(-1), { recovered: true, id: c.connects[0].id }, `${c.name} recovered its session on another node`);
      }
      const left = await Promise.all(nodes.filter((n) => n !== victim).map(openConnections));
      assert.equal(left.reduce((a, b) => a + b, 0), clients.length, `all clients on the remaining nodes (${left.join("/")})`);

      // The room still spans the remaining nodes.
      assert.deepEqual(await ack(from.socket, "publish", { room, event: "m", data: "after" }), { ok: true });
      await waitFor(() => clients.every((c) => c === from || c.got.includes("after")), { what: "the room receives after the drain" });
      for (const c of clients) {
        assert.deepEqual(c.got, ["before", ...gap, ...(c === from ? [] : ["after"])], `${c.name}: every message once, in order`);
      }
      nodes = nodes.filter((n) => n !== victim).concat(victim); // stopped already; after() stops it again harmlessly
      await sleep(0);
    });
  });
}
