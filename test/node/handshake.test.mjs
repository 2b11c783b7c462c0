// Engine.IO handshake and session errors, checked on the wire with raw HTTP and WebSocket.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, within } from "./lib/harness.mjs";
import { request, decodePayload } from "./lib/raw.mjs";

const PING_INTERVAL = 10_000;
const PING_TIMEOUT = 5_000;
const MAX_PAYLOAD = 2_000;

describe("handshake", () => {
  const srv = useServer([
    "--ping-interval", "10s", "--ping-timeout", "5s", "--max-payload", String(MAX_PAYLOAD),
  ]);
  const eio = (q) => `${srv().url}/socket.io/?${q}`;

  async function openPolling() {
    const res = await request(eio("EIO=4&transport=polling"));
    assert.equal(res.status, 200, `handshake status; body ${res.text}`);
    assert.match(res.text, /^0\{/, "handshake body starts with the open packet");
    return JSON.parse(res.text.slice(1));
  }

  function assertError(res, code, message) {
    assert.equal(res.status, 400, `status; body ${JSON.stringify(res.text)}`);
    assert.match(String(res.headers["content-type"]), /application\/json/, "error content type");
    assert.deepEqual(res.json(), { code, message });
  }

  scenario("polling handshake returns the open packet with the configured values", async () => {
    const open = await openPolling();
    assert.equal(typeof open.sid, "string");
    assert.ok(open.sid.length > 0, "sid is not empty");
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, MAX_PAYLOAD);
    const other = await openPolling();
    assert.notEqual(other.sid, open.sid, "each handshake gets its own sid");
  });

  scenario("websocket handshake returns the open packet without upgrades", async (s) => {
    const ws = await s.rawWs(srv());
    const open = await ws.handshake();
    assert.equal(typeof open.sid, "string");
    assert.ok(open.sid.length > 0);
    assert.deepEqual(open.upgrades, []);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, MAX_PAYLOAD);
  });

  scenario("unknown transport is rejected with code 0", async () => {
    assertError(await request(eio("EIO=4&transport=carrier-pigeon")), 0, "Transport unknown");
    assertError(await request(eio("EIO=4")), 0, "Transport unknown");
  });

  scenario("unknown sid is rejected with code 1", async () => {
    assertError(await request(eio("EIO=4&transport=polling&sid=nosuchsession")), 1, "Session ID unknown");
    assertError(
      await request(eio("EIO=4&transport=polling&sid=nosuchsession"), { method: "POST", body: "4hello" }),
      1, "Session ID unknown",
    );
  });

  scenario("missing or unsupported EIO is rejected with code 5", async () => {
    for (const q of ["transport=polling", "EIO=3&transport=polling", "EIO=5&transport=polling", "EIO=abc&transport=polling"]) {
      await within(5000, (async () => {
        assertError(await request(eio(q)), 5, "Unsupported protocol version");
      })(), q);
    }
  });

  scenario("handshake with POST is rejected", async () => {
    const res = await request(eio("EIO=4&transport=polling"), { method: "POST", body: "4x" });
    assertError(res, 2, "Bad handshake method");
  });

  scenario("a second concurrent polling GET gets 400 and closes the session", async () => {
    const { sid } = await openPolling();
    const url = eio(`EIO=4&transport=polling&sid=${sid}`);
    const first = request(url); // parked: nothing to send until the next ping (10 s)
    await new Promise((r) => setTimeout(r, 200));
    const second = await request(url);
    assert.equal(second.status, 400, `second GET status; body ${JSON.stringify(second.text)}`);
    const firstRes = await within(3000, first, "first GET ends once the session closes");
    assert.equal(firstRes.status, 200);
    assert.deepEqual(decodePayload(firstRes.text), ["1"], "first GET carries the close packet");
    const third = await request(url);
    assertError(third, 1, "Session ID unknown");
  });

  scenario("a polling POST body larger than max-payload gets 413", async () => {
    const { sid } = await openPolling();
    const url = eio(`EIO=4&transport=polling&sid=${sid}`);
    const body = "4" + "x".repeat(MAX_PAYLOAD + 10);
    const res = await request(url, { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8" } });
    assert.equal(res.status, 413, `status; body ${JSON.stringify(res.text.slice(0, 200))}`);
  });

  scenario("a polling POST at max-payload is accepted", async () => {
    const { sid } = await openPolling();
    const url = eio(`EIO=4&transport=polling&sid=${sid}`);
    const prefix = '40\x1e42["echo","';
    const body = prefix + "x".repeat(MAX_PAYLOAD - prefix.length - 2) + '"]'; // exactly MAX_PAYLOAD bytes
    assert.equal(Buffer.byteLength(body), MAX_PAYLOAD);
    const res = await request(url, { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8" } });
    assert.equal(res.status, 200, `status; body ${JSON.stringify(res.text.slice(0, 200))}`);
    assert.equal(res.text, "ok");
  });
});
