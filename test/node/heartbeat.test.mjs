// Engine.IO heartbeat: the server pings every --ping-interval and closes a
// connection whose pong does not come within --ping-timeout.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, waitFor, TRANSPORTS, SAFETY_NET } from "./lib/harness.mjs";
import { request } from "./lib/raw.mjs";

const INTERVAL = 300;
const TIMEOUT = 200;

describe("heartbeat", () => {
  // For the closes: a short timeout is the subject.
  const srv = useServer(["--ping-interval", `${INTERVAL}ms`, "--ping-timeout", `${TIMEOUT}ms`]);
  // For staying connected: the server sends its next ping only after the pong
  // to the last one, so every ping after the first proves a pong was taken;
  // a generous timeout lets a loaded machine answer late.
  const steady = useServer(["--ping-interval", `${INTERVAL}ms`, "--ping-timeout", `${SAFETY_NET}ms`]);

  scenario("a raw websocket client that answers pings stays connected", async (s) => {
    const ws = await s.rawWs(steady(), { autoPong: true });
    await ws.handshake();
    await waitFor(() => ws.pings >= 5 || ws.closedAt !== null, { what: "5 pings" });
    assert.equal(ws.closedAt, null, `closed after ${ws.closedAt - ws.openedAt} ms with code ${ws.closeCode}`);
  });

  scenario("a raw websocket client that never answers is closed after interval + timeout", async (s) => {
    // The server's timer starts at the handshake, after this: a timer never
    // fires early, so the bound below holds however loaded the machine is.
    const start = Date.now();
    const ws = await s.rawWs(srv(), { autoPong: false });
    await ws.handshake();
    await ws.waitClosed();
    const lived = ws.closedAt - start;
    s.note(`closed after ${lived} ms (pings seen: ${ws.pings})`);
    assert.ok(lived >= INTERVAL + TIMEOUT, `closed too early: ${lived} ms`);
    assert.ok(ws.pings >= 1, "a ping was sent before the close");
  });

  scenario("a socket.io connection over raw websocket also stays up while answering pings", async (s) => {
    const ws = await s.rawWs(steady(), { autoPong: true });
    await ws.handshake();
    assert.match(await ws.connect("/"), /^40\{/);
    await waitFor(() => ws.pings >= 5 || ws.closedAt !== null, { what: "5 pings" });
    assert.equal(ws.closedAt, null, "connection closed while pongs were sent");
    ws.send('42["echo","still here"]'); // no ack id: nothing comes back, but the connection must stay open
    ws.send('421["echo","still here"]');
    assert.equal(await ws.next((m) => m.startsWith("43")), '431["still here"]');
  });

  scenario("a polling session that stops polling is closed after interval + timeout", async () => {
    const res = await request(`${srv().url}/socket.io/?EIO=4&transport=polling`);
    const { sid } = JSON.parse(res.text.slice(1));
    // Polling again is no pong: the ping it may fetch goes unanswered.
    let late;
    await waitFor(async () => {
      late = await request(`${srv().url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      return late.status !== 200;
    }, { interval: 50, what: "the session to end" });
    assert.equal(late.status, 400, `poll after the ping timeout: ${late.status} ${late.text}`);
    assert.deepEqual(late.json(), { code: 1, message: "Session ID unknown" });
  });

  for (const { name, opts } of TRANSPORTS) {
    scenario(`socket.io-client over ${name} stays connected across many heartbeats`, async (s) => {
      const c = await s.client(steady().url, opts);
      let disconnects = 0;
      c.on("disconnect", () => disconnects++);
      let pings = 0;
      c.io.engine.on("ping", () => pings++);
      await waitFor(() => pings >= 4 || disconnects > 0, { what: "4 pings" });
      assert.equal(disconnects, 0);
      assert.ok(c.connected);
      assert.deepEqual(await c.timeout(SAFETY_NET).emitWithAck("echo", 42), 42);
    });
  }
});
