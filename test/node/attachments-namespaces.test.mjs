// Binary attachments and dynamic namespaces from clients that are not (yet)
// authenticated: nothing is held, nothing stays; legitimate use still works.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, ack } from "./lib/harness.mjs";
import { request, signHS256 } from "./lib/raw.mjs";

const SECRET = "attachments-secret-0123456789";
const MAX_PAYLOAD = 100_000;
const MAX_NAMESPACES = 20;
const now = () => Math.floor(Date.now() / 1000);
const token = (sub) => signHS256({ sub, iat: now(), exp: now() + 600 }, SECRET);
const placeholders = (n) => Array.from({ length: n }, (_, i) => JSON.stringify({ _placeholder: true, num: i })).join(",");

/** The namespace label values of roomcast_socket_connects_total and _connect_errors_total. */
async function namespaceLabels(srv) {
  const res = await request(`${srv.url}/metrics`);
  const out = new Set();
  for (const m of res.text.matchAll(/^roomcast_socket_connect(?:s|_errors)_total\{namespace="([^"]*)"\}/gm)) out.add(m[1]);
  return [...out].sort();
}

describe("attachments and namespaces before authentication", () => {
  const srv = useServer([
    "--jwt-secret", SECRET, "--max-payload", String(MAX_PAYLOAD),
    "--namespaces", "^/t-[0-9]+$", "--max-namespaces", String(MAX_NAMESPACES),
  ]);

  scenario("websocket: a binary packet before CONNECT closes the connection at its header", async (s) => {
    const ws = await s.rawWs(srv());
    await ws.handshake();
    ws.send(`4599-["e",${placeholders(99)}]`);
    const { code, reason } = await ws.waitClosed(5000);
    assert.deepEqual([code, reason], [1002, "parse error"]);
  });

  scenario("websocket: a binary packet after a refused CONNECT closes the connection", async (s) => {
    const ws = await s.rawWs(srv());
    await ws.handshake();
    assert.match(await ws.connect("/", { token: "forged" }), /^44\{.*"message":"unauthorized"/);
    ws.send(`4599-["e",${placeholders(99)}]`);
    const { code } = await ws.waitClosed(5000);
    assert.equal(code, 1002);
  });

  scenario("websocket: attachments over max-payload in total close the connection", async (s) => {
    const ws = await s.rawWs(srv());
    await ws.handshake();
    assert.match(await ws.connect("/", { token: token("u1") }), /^40\{/);
    ws.send(`453-["echo",${placeholders(3)}]`);
    for (let i = 0; i < 3 && !ws.closedAt; i++) ws.send(Buffer.alloc(MAX_PAYLOAD / 2, i));
    const { code, reason } = await ws.waitClosed(5000);
    assert.deepEqual([code, reason], [1009, "message too big"]);
  });

  scenario("socket.io-client: binary emits under max-payload in total still round-trip", async (s) => {
    const c = await s.client(srv().url, { transports: ["websocket"], auth: { token: token("u2") } });
    const bufs = [Buffer.alloc(30_000, 1), Buffer.alloc(30_000, 2), Buffer.from([3])];
    const got = await ack(c, "echo", bufs);
    assert.deepEqual(got.map((b) => Buffer.from(b)), bufs);
  });

  scenario("refused dynamic namespaces leave no metric series; accepted ones go when empty; the cap refuses", async (s) => {
    const before = await namespaceLabels(srv());
    // Refused by auth: 200 made-up names on one raw connection.
    const ws = await s.rawWs(srv());
    await ws.handshake();
    for (let i = 0; i < 200; i++) assert.match(await ws.connect(`/t-${i}`, { token: "forged" }), /^44\/t-\d+,\{.*"message":"unauthorized"/);
    assert.deepEqual(await namespaceLabels(srv()), before, "refused CONNECTs left series behind");

    // Accepted up to the cap, then connect_error.
    const m = s.manager(srv().url, { transports: ["websocket"] });
    const sockets = [];
    for (let i = 0; i < MAX_NAMESPACES; i++) {
      const sock = m.socket(`/t-${i}`, { auth: { token: token("u3") } });
      await new Promise((resolve, reject) => { sock.once("connect", resolve); sock.once("connect_error", reject); });
      sockets.push(sock);
    }
    const over = m.socket(`/t-${MAX_NAMESPACES}`, { auth: { token: token("u3") } });
    const err = await new Promise((resolve, reject) => { over.once("connect", () => reject(new Error("connected over the cap"))); over.once("connect_error", resolve); });
    assert.equal(err.message, "too many namespaces");

    // Every socket leaves: the namespaces and their series go.
    for (const sock of sockets) sock.disconnect();
    const deadline = Date.now() + 10_000;
    let labels;
    do {
      labels = (await namespaceLabels(srv())).filter((l) => l.startsWith("/t-"));
      if (labels.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    assert.deepEqual(labels, [], "series of emptied namespaces stayed");
    // A freed slot takes a new name again.
    const again = m.socket(`/t-${MAX_NAMESPACES + 1}`, { auth: { token: token("u3") } });
    await new Promise((resolve, reject) => { again.once("connect", resolve); again.once("connect_error", reject); });
  });
});
