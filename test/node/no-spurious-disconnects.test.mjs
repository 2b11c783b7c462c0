// NO SPURIOUS DISCONNECTS: 1,000 clients connect at a bounded rate and stay
// idle for 60 s with a 1 s ping interval; every CONNECT is answered and no
// client is disconnected. Slow (~75 s) on purpose.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { io as ioClient } from "socket.io-client";
import { scenario, useServer, sleep, waitFor } from "./lib/harness.mjs";

const CLIENTS = 1000;
const IDLE_MS = 60_000;
const BATCH = 50; // connects per step
const STEP_MS = 250; // => at most 200 connects per second
// transport mix: mostly websocket, some polling-only, some polling-then-upgrade
const SETUPS = [
  { name: "websocket", share: 0.8, opts: { transports: ["websocket"] } },
  { name: "polling", share: 0.1, opts: { transports: ["polling"] } },
  { name: "upgrade", share: 0.1, opts: {} },
];

describe("no spurious disconnects", () => {
  const srv = useServer(["--ping-interval", "1s", "--log-level", "info"]);

  scenario(`${CLIENTS} clients idle for ${IDLE_MS / 1000} s with --ping-interval 1s`, { timeout: IDLE_MS + 90_000 }, async (s) => {
    const clients = [];
    const plan = SETUPS.flatMap((st) => Array(Math.round(CLIENTS * st.share)).fill(st));
    assert.equal(plan.length, CLIENTS);
    s.defer(() => { for (const c of clients) c.socket.disconnect(); });

    const t0 = Date.now();
    for (let i = 0; i < CLIENTS; i += BATCH) {
      const stepStart = Date.now();
      for (const setup of plan.slice(i, i + BATCH)) {
        const socket = ioClient(srv().url, { forceNew: true, reconnection: false, timeout: 20_000, ...setup.opts });
        const st = { socket, setup: setup.name, connects: 0, errors: [], disconnects: [], pings: 0 };
        socket.on("connect", () => { st.connects++; st.connectedAt = Date.now(); });
        socket.on("connect_error", (e) => st.errors.push(e.message));
        socket.on("disconnect", (reason) => st.disconnects.push({ reason, at: Date.now() - t0 }));
        socket.io.on("ping", () => st.pings++);
        clients.push(st);
      }
      await sleep(Math.max(0, STEP_MS - (Date.now() - stepStart)));
    }
    const connected = () => clients.filter((c) => c.connects > 0).length;
    try {
      await waitFor(() => connected() === CLIENTS || clients.some((c) => c.errors.length), {
        timeout: 30_000, interval: 100, what: `${CLIENTS} connects`,
      });
    } finally {
      s.note(`${connected()} of ${CLIENTS} connected ${Date.now() - t0} ms after the first connect attempt`);
    }
    const failed = clients.filter((c) => c.errors.length);
    assert.deepEqual(failed.slice(0, 5).map((c) => `${c.setup}: ${c.errors.join(", ")}`), [], `${failed.length} connect errors`);

    const idleStart = Date.now();
    const pingsBefore = clients.map((c) => c.pings);
    for (let waited = 0; waited < IDLE_MS; waited += 10_000) {
      await sleep(10_000);
      const down = clients.filter((c) => c.disconnects.length);
      s.note(`idle ${Math.round((Date.now() - idleStart) / 1000)} s: ${clients.length - down.length} connected, ${down.length} disconnected`);
    }

    const down = clients.filter((c) => c.disconnects.length || !c.socket.connected);
    const byReason = {};
    for (const c of down) for (const d of c.disconnects) byReason[`${c.setup}: ${d.reason}`] = (byReason[`${c.setup}: ${d.reason}`] ?? 0) + 1;
    assert.equal(down.length, 0, `${down.length} clients disconnected: ${JSON.stringify(byReason)}; first at ${down[0]?.disconnects[0]?.at} ms`);
    assert.ok(clients.every((c) => c.connects === 1), "a client connected more than once");

    // heartbeats really ran: at 1 s interval, 60 s idle means ~60 pings each
    const minPings = Math.min(...clients.map((c, i) => c.pings - pingsBefore[i]));
    s.note(`fewest pings seen by a client during the idle period: ${minPings}`);
    assert.ok(minPings >= IDLE_MS / 1000 - 10, `a client saw only ${minPings} pings in ${IDLE_MS / 1000} s`);

    // and every connection still works
    const results = await Promise.all(clients.map((c, i) => c.socket.timeout(10_000).emitWithAck("echo", i).catch((e) => e.message)));
    const wrong = results.map((r, i) => [i, r]).filter(([i, r]) => r !== i);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} clients failed the final echo`);
    const upgraded = clients.filter((c) => c.setup === "upgrade" && c.socket.io.engine.transport.name === "websocket").length;
    assert.equal(upgraded, plan.filter((p) => p.name === "upgrade").length, "every polling-then-upgrade client upgraded");
  });
});
