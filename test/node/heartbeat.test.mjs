// Engine.IO heartbeat: the server pings every --ping-interval and closes a
// connection whose pong does not come within --ping-timeout.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, sleep, TRANSPORTS } from "./lib/harness.mjs";
import { request } from "./lib/raw.mjs";

const INTERVAL = 300;
const TIMEOUT = 200;
const SLACK = 700;

describe("heartbeat", () => {
  const srv = useServer(["--ping-interval", `${INTERVAL}ms`, "--ping-timeout", `${TIMEOUT}ms`]);

  scenario("a raw websocket client that answers pings stays connected", async (s) => {
    const ws = await s.rawWs(srv(), { autoPong: true });
    await ws.handshake();
    await sleep(2200);
    assert.equal(ws.closedAt, null, `closed after ${ws.closedAt - ws.openedAt} ms with code ${ws.closeCode}`);
    assert.ok(ws.pings >= 5, `expected at least 5 pings in 2.2 s at ${INTERVAL} ms, got ${ws.pings}`);
  });

  scenario("a raw websocket client that never answers is closed after interval + timeout", async (s) => {
    const ws = await s.rawWs(srv(), { autoPong: false });
    await ws.handshake();
    await ws.waitClosed(INTERVAL + TIMEOUT + SLACK);
    const lived = ws.closedAt - ws.openedAt;
    s.note(`closed after ${lived} ms (pings seen: ${ws.pings})`);
    assert.ok(lived >= INTERVAL + TIMEOUT - 50, `closed too early: ${lived} ms`);
    assert.ok(ws.pings >= 1, "a ping was sent before the close");
  });

  scenario("a socket.io connection over raw websocket also stays up while answering pings", async (s) => {
    const ws = await s.rawWs(srv(), { autoPong: true });
    await ws.handshake();
    assert.match(await ws.connect("/"), /^40\{/);
    await sleep(1500);
    assert.equal(ws.closedAt, null, "connection closed while pongs were sent");
    ws.send('42["echo","still here"]'); // no ack id: nothing comes back, but the connection must stay open
    ws.send('421["echo","still here"]');
    assert.equal(await ws.next((m) => m.startsWith("43")), '431["still here"]');
  });

  scenario("a polling session that stops polling is closed after interval + timeout", async () => {
    const res = await request(`${srv().url}/socket.io/?EIO=4&transport=polling`);
    const { sid } = JSON.parse(res.text.slice(1));
    await sleep(INTERVAL + TIMEOUT + SLACK);
    const late = await request(`${srv().url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.equal(late.status, 400, `poll after the ping timeout: ${late.status} ${late.text}`);
    assert.deepEqual(late.json(), { code: 1, message: "Session ID unknown" });
  });

  for (const { name, opts } of TRANSPORTS) {
    scenario(`socket.io-client over ${name} stays connected across many heartbeats`, async (s) => {
      const c = await s.client(srv().url, opts);
      let disconnects = 0;
      c.on("disconnect", () => disconnects++);
      let pings = 0;
      c.io.engine.on("ping", () => pings++);
      await sleep(2000);
      assert.equal(disconnects, 0);
      assert.ok(c.connected);
      assert.ok(pings >= 4, `expected at least 4 pings in 2 s, got ${pings}`);
      assert.deepEqual(await c.timeout(2000).emitWithAck("echo", 42), 42);
    });
  }
});
