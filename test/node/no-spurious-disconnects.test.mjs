// NO SPURIOUS DISCONNECTS: 1,000 clients connect at a bounded rate and stay
// idle for 50 heartbeats each (~60 s) with a 1 s ping interval; every CONNECT
// is answered and no client is disconnected. Slow (~75 s) on purpose. The
// idle period is counted in heartbeats, not seconds: on a loaded machine a
// heartbeat cycle (ping, pong, interval) takes longer, and it is the
// heartbeats that could disconnect someone.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { io as ioClient } from "socket.io-client";
import { scenario, useServer, sleep, waitFor, SAFETY_NET } from "./lib/harness.mjs";

const CLIENTS = 1000;
const HEARTBEATS = 50; // pings every client sees while idle
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

  scenario(`${CLIENTS} clients idle for ${HEARTBEATS} heartbeats with --ping-interval 1s`, { timeout: 600_000 }, async (s) => {
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
        timeout: 4 * SAFETY_NET, interval: 100, what: `${CLIENTS} connects`,
      });
    } finally {
      s.note(`${connected()} of ${CLIENTS} connected ${Date.now() - t0} ms after the first connect attempt`);
    }
    const failed = clients.filter((c) => c.errors.length);
    assert.deepEqual(failed.slice(0, 5).map((c) => `${c.setup}: ${c.errors.join(", ")}`), [], `${failed.length} connect errors`);

    const idleStart = Date.now();
    const pingsBefore = clients.map((c) => c.pings);
    const fewest = () => Math.min(...clients.map((c, i) => c.pings - pingsBefore[i]));
    // Until every client saw HEARTBEATS pings, or one went down (asserted
    // below). A client whose pings stop is stuck: 10 minutes (the
    // scenario's timeout) is only the safety net.
    let noted = idleStart;
    await waitFor(() => {
      const down = clients.filter((c) => c.disconnects.length);
      if (Date.now() - noted >= 10_000) {
        noted = Date.now();
        s.note(`idle ${Math.round((noted - idleStart) / 1000)} s: fewest pings ${fewest()}, ${clients.length - down.length} connected, ${down.length} disconnected`);
      }
      return down.length > 0 || fewest() >= HEARTBEATS;
    }, { timeout: 540_000, interval: 200, what: `${HEARTBEATS} pings at every client` });
    s.note(`${HEARTBEATS} heartbeats at every client in ${Math.round((Date.now() - idleStart) / 1000)} s`);

    const down = clients.filter((c) => c.disconnects.length || !c.socket.connected);
    const byReason = {};
    for (const c of down) for (const d of c.disconnects) byReason[`${c.setup}: ${d.reason}`] = (byReason[`${c.setup}: ${d.reason}`] ?? 0) + 1;
    assert.equal(down.length, 0, `${down.length} clients disconnected: ${JSON.stringify(byReason)}; first at ${down[0]?.disconnects[0]?.at} ms`);
    assert.ok(clients.every((c) => c.connects === 1), "a client connected more than once");

    // heartbeats really ran
    assert.ok(fewest() >= HEARTBEATS, `a client saw only ${fewest()} pings`);

    // and every connection still works
    const results = await Promise.all(clients.map((c, i) => c.socket.timeout(SAFETY_NET).emitWithAck("echo", i).catch((e) => e.message)));
    const wrong = results.map((r, i) => [i, r]).filter(([i, r]) => r !== i);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} clients failed the final echo`);
    const upgraded = clients.filter((c) => c.setup === "upgrade" && c.socket.io.engine.transport.name === "websocket").length;
    assert.equal(upgraded, plan.filter((p) => p.name === "upgrade").length, "every polling-then-upgrade client upgraded");
  });
});
