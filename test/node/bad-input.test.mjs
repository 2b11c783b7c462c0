// Malformed or oversized input closes the offending connection only.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, sleep } from "./lib/harness.mjs";
import { request, decodePayload } from "./lib/raw.mjs";

const MAX_PAYLOAD = 1000;

// Engine.IO / Socket.IO frames a server must refuse (each on a fresh connection after CONNECT).
const BAD_FRAMES = {
  "socket.io packet type '{'": "4{{{",
  "truncated JSON": '42["echo",',
  "event payload not an array": '42{"a":1}',
  "event name not a string": '42[{"a":1}]',
  "unknown engine.io packet type": "9zzz",
};

describe("bad input", () => {
  const srv = useServer(["--max-payload", String(MAX_PAYLOAD)]);

  /** A healthy socket.io client of each transport, to check they survive. */
  async function bystanders(s) {
    return Promise.all(TRANSPORTS.map(({ opts }) => s.client(srv().url, opts)));
  }
  async function assertHealthy(clients) {
    for (const c of clients) {
      assert.ok(c.connected, "a healthy client was disconnected");
      assert.equal(await ack(c, "echo", "fine"), "fine");
    }
  }

  for (const [what, frame] of Object.entries(BAD_FRAMES)) {
    scenario(`websocket: ${what} (${JSON.stringify(frame)}) closes that connection`, async (s) => {
      const healthy = await bystanders(s);
      const ws = await s.rawWs(srv());
      await ws.handshake();
      assert.match(await ws.connect("/"), /^40\{/);
      ws.send(frame);
      await ws.waitClosed(3000);
      await assertHealthy(healthy);
    });
  }

  scenario("websocket: an event before CONNECT is not handled", async (s) => {
    // Node closes such a connection ("invalid state"); ignoring the packet is
    // fine too. What must not happen is handling it for a socket that does not exist.
    const healthy = await bystanders(s);
    const ws = await s.rawWs(srv());
    await ws.handshake();
    ws.send('421["echo","too early"]');
    await Promise.race([ws.closed, new Promise((r) => setTimeout(r, 500))]);
    assert.deepEqual(ws.queue.filter((m) => typeof m === "string" && m.startsWith("43")), [], "the early event was acked");
    if (!ws.closedAt) {
      assert.match(await ws.connect("/"), /^40\{/, "CONNECT after an ignored early event");
      ws.send('422["echo","in order"]');
      assert.equal(await ws.next((m) => m.startsWith("43")), '432["in order"]');
    }
    s.note(ws.closedAt ? "server closed the connection" : "server ignored the early event");
    await assertHealthy(healthy);
  });

  scenario("websocket: a message larger than max-payload closes that connection", async (s) => {
    const healthy = await bystanders(s);
    const ws = await s.rawWs(srv());
    await ws.handshake();
    assert.match(await ws.connect("/"), /^40\{/);
    ws.send('421["echo","ok"]');
    assert.equal(await ws.next((m) => m.startsWith("43")), '431["ok"]', "a small message works");
    ws.send(`42["echo","${"x".repeat(MAX_PAYLOAD * 2)}"]`);
    const { code } = await ws.waitClosed(3000);
    s.note(`close code ${code}`);
    await assertHealthy(healthy);
  });

  scenario("websocket: a binary frame larger than max-payload closes that connection", async (s) => {
    const ws = await s.rawWs(srv());
    await ws.handshake();
    assert.match(await ws.connect("/"), /^40\{/);
    ws.send('451-["echo",{"_placeholder":true,"num":0}]');
    ws.send(Buffer.alloc(MAX_PAYLOAD * 2, 7));
    await ws.waitClosed(3000);
  });

  /** Opens a polling session and connects to "/"; returns the session URL. */
  async function pollingSession() {
    const hs = await request(`${srv().url}/socket.io/?EIO=4&transport=polling`);
    const { sid } = JSON.parse(hs.text.slice(1));
    const url = `${srv().url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await request(url, { method: "POST", body: "40" })).status, 200);
    const reply = await request(url);
    assert.match(reply.text, /^40\{/, `CONNECT reply ${reply.text}`);
    return url;
  }

  /** Polls until the session is gone (400 code 1); bounded to 6 polls. */
  async function assertPollingClosed(url) {
    const seen = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(url);
      seen.push(`${res.status} ${JSON.stringify(res.text.slice(0, 80))}`);
      if (res.status === 400) {
        assert.deepEqual(res.json(), { code: 1, message: "Session ID unknown" });
        return;
      }
      assert.equal(res.status, 200);
      if (decodePayload(res.text).includes("1")) continue; // close packet: the next poll must fail
    }
    assert.fail(`polling session still open; polls: ${seen.join(" | ")}`);
  }

  for (const [what, frame] of Object.entries({ ...BAD_FRAMES, "engine.io garbage": "zzz" })) {
    scenario(`polling: ${what} in a POST closes that session`, async (s) => {
      const healthy = await bystanders(s);
      const url = await pollingSession();
      const post = await request(url, { method: "POST", body: frame });
      s.note(`POST answered ${post.status} ${JSON.stringify(post.text)}`);
      await assertPollingClosed(url);
      await assertHealthy(healthy);
    });
  }

  scenario("polling: a POST larger than max-payload gets 413 and leaves others alone", async (s) => {
    const healthy = await bystanders(s);
    const url = await pollingSession();
    const post = await request(url, { method: "POST", body: `42["echo","${"x".repeat(MAX_PAYLOAD * 2)}"]` });
    assert.equal(post.status, 413);
    await sleep(50);
    await assertHealthy(healthy);
  });
});
