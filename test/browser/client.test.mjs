// The socket.io browser client, as served by roomcast at
// /socket.io/socket.io.js, in headless Chromium, on a page of another origin.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { io as nodeIo } from "socket.io-client";
import { startServer } from "../node/lib/server.mjs";
import { startRedis } from "../node/lib/cluster.mjs";
import { request, apiEmit, SAFETY_NET } from "../node/lib/raw.mjs";
import { Proxy } from "../harness/proxy.mjs";
import { launch, pageOrigin, openPage, bundlePage } from "./lib.mjs";

const TIMEOUT = 4 * SAFETY_NET;

describe("socket.io client in Chromium", { timeout: 10 * SAFETY_NET }, () => {
  let browser, srv, origin, page;

  before(async () => {
    browser = await launch();
    srv = await startServer([]);
    origin = await pageOrigin(bundlePage(srv.url));
    page = await openPage(browser, origin.url);
    assert.notEqual(new URL(origin.url).origin, new URL(srv.url).origin, "the page must be cross-origin");
    assert.equal(await page.evaluate(() => typeof io), "function", "the served bundle defines io");
  });

  after(async () => {
    await browser?.close();
    await origin?.close();
    await srv?.stop();
  });

  // Every test ends with no console errors on the shared page.
  // One error is the client's, not the server's: on disconnect over
  // polling, engine.io-client POSTs its close packet while its previous
  // POST may still be in flight, and the overlapping POST is refused with
  // 400 (Node's engine.io answers it the same way). It shows on a loaded
  // machine, after the test that disconnected.
  const overlap = (e) => /status of 400/.test(e.text) && /transport=polling/.test(e.url);
  const noErrors = () => assert.deepEqual(page.errors.filter((e) => !overlap(e)).map((e) => e.text), [], "console errors");

  it("serves the bundle with ETag and 304", { timeout: TIMEOUT }, async () => {
    const res = await request(`${srv.url}/socket.io/socket.io.js`);
    assert.equal(res.status, 200);
    assert.match(res.text, /Socket\.IO v4\.8\.4/);
    assert.equal(res.headers.etag, '"4.8.4"');
    const again = await request(`${srv.url}/socket.io/socket.io.js`, { headers: { "If-None-Match": res.headers.etag } });
    assert.equal(again.status, 304);
    for (const name of ["socket.io.min.js", "socket.io.esm.min.js", "socket.io.js.map", "socket.io.min.js.map", "socket.io.esm.min.js.map"]) {
      assert.equal((await request(`${srv.url}/socket.io/${name}`)).status, 200, name);
    }
  });

  for (const [name, opts, want] of [
    ["default transports end on WebSocket", {}, "websocket"],
    ["polling only", { transports: ["polling"] }, "polling"],
    ["WebSocket only", { transports: ["websocket"] }, "websocket"],
  ]) {
    it(name, { timeout: TIMEOUT }, async () => {
      const got = await page.evaluate(async ({ url, opts }) => {
        const s = await connect(url, opts);
        const transport = opts.transports ? s.io.engine.transport.name : await upgraded(s);
        const echo = await ack(s, "echo", { hello: "world", n: [1, 2, 3] });
        await ack(s, "join", "room-a");
        const heard = new Promise((resolve) => s.once("news", resolve));
        const s2 = await connect(url, opts);
        await ack(s2, "publish", { room: "room-a", event: "news", data: "from s2" });
        const news = await heard;
        s.disconnect(); s2.disconnect();
        return { transport, echo, news };
      }, { url: srv.url, opts });
      assert.equal(got.transport, want);
      assert.deepEqual(got.echo, { hello: "world", n: [1, 2, 3] });
      assert.equal(got.news, "from s2");
      noErrors();
    });
  }

  it("binary (ArrayBuffer) both ways", { timeout: TIMEOUT }, async () => {
    const got = await page.evaluate(async (url) => {
      const bytes = new Uint8Array(256).map((_, i) => i);
      const s = await connect(url, { transports: ["websocket"] });
      const p = await connect(url, { transports: ["polling"] });
      // Browser → server → browser in the ack, on both transports.
      const ws = await ack(s, "echo", bytes.buffer, "text");
      const poll = await ack(p, "echo", { nested: bytes.buffer });
      // A binary event the server sends (a publish from another socket).
      await ack(s, "join", "bin");
      const heard = new Promise((resolve) => s.once("blob", resolve));
      await ack(p, "publish", { room: "bin", event: "blob", data: bytes.buffer });
      const event = await heard;
      s.disconnect(); p.disconnect();
      const dump = (b) => ({ type: Object.prototype.toString.call(b), bytes: Array.from(new Uint8Array(b)) });
      return { ws: dump(ws), poll: dump(poll.nested), event: dump(event) };
    }, srv.url);
    const want = { type: "[object ArrayBuffer]", bytes: Array.from({ length: 256 }, (_, i) => i) };
    assert.deepEqual(got.ws, want);
    assert.deepEqual(got.poll, want);
    assert.deepEqual(got.event, want);
    noErrors();
  });

  it("acks with timeout both ways", { timeout: TIMEOUT }, async () => {
    // Browser → server: an ack within the timeout, and one that never comes.
    const clientSide = await page.evaluate(async (url) => {
      const s = await connect(url);
      window.asked = s; // kept for the server → browser part
      s.on("ask", (n, cb) => cb(n * 2));
      s.on("ignore", () => {});
      const ok = await s.timeout(30000).emitWithAck("echo", 21);
      let timedOut = null;
      try { await s.timeout(300).emitWithAck("no-such-handler", 1); } catch (e) { timedOut = e.message; }
      return { ok, timedOut, id: s.id };
    }, srv.url);
    assert.equal(clientSide.ok, 21);
    assert.equal(clientSide.timedOut, "operation has timed out");
    // Server → browser: the HTTP API emits with ack and a timeout.
    const answered = await apiEmit(srv, { rooms: [clientSide.id], event: "ask", data: 21, ack: true, timeout: 30000 });
    assert.equal(answered.status, 200, answered.text);
    assert.deepEqual(answered.json().acks, [42]);
    const ignored = await apiEmit(srv, { rooms: [clientSide.id], event: "ignore", data: 1, ack: true, timeout: 300 });
    assert.equal(ignored.status, 504, ignored.text);
    assert.deepEqual(ignored.json().acks, []);
    await page.evaluate(() => window.asked.disconnect());
    noErrors();
  });
});

describe("connection state recovery in Chromium after a network drop", { timeout: 10 * SAFETY_NET }, () => {
  let browser, srv, proxy, origin, page;

  before(async () => {
    browser = await launch();
    srv = await startServer(["--recovery-window", "2m"]);
    proxy = await new Proxy({ targetPort: srv.port }).start();
    origin = await pageOrigin(bundlePage(srv.url));
    page = await openPage(browser, origin.url);
  });

  after(async () => {
    await browser?.close();
    await origin?.close();
    await proxy?.close();
    await srv?.stop();
  });

  for (const [name, opts] of [["websocket", { transports: ["websocket"] }], ["polling", { transports: ["polling"] }]]) {
    it(`${name}: messages published during the gap arrive, recovered`, { timeout: TIMEOUT }, async () => {
      const room = `gap-${name}`;
      // The browser reaches the server through the proxy.
      await page.evaluate(async ({ url, opts, room }) => {
        const s = await connect(url, opts);
        window.rec = { s, got: [], disconnects: [], reconnected: null };
        s.on("msg", (m) => window.rec.got.push(m));
        s.on("disconnect", (reason) => window.rec.disconnects.push(reason));
        await ack(s, "join", room);
        s.once("connect", () => { window.rec.reconnected = { recovered: s.recovered }; });
      }, { url: proxy.url, opts, room });
      await apiEmit(srv, { rooms: [room], event: "msg", data: 0 });
      await page.waitForFunction(() => window.rec.got.length === 1, null, { timeout: SAFETY_NET });

      const dropAt = Date.now();
      proxy.down(); // resets the connections and refuses new ones
      await page.waitForFunction(() => window.rec.disconnects.length === 1, null, { timeout: SAFETY_NET });
      // The server saw the drop too: the room is empty, so the messages go to recovery history only.
      const sockets = async () => (await request(`${srv.url}/api/v1/sockets?room=${room}`)).json().sockets;
      for (const deadline = Date.now() + SAFETY_NET; (await sockets()).length > 0;) {
        assert.ok(Date.now() < deadline, "the server still lists the dropped socket");
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let i = 1; i <= 5; i++) {
        const res = await apiEmit(srv, { rooms: [room], event: "msg", data: i });
        assert.equal(res.status, 200, res.text);
      }
      proxy.up();
      const upAt = Date.now();
      await page.waitForFunction(() => window.rec.reconnected && window.rec.got.length >= 6, null, { timeout: SAFETY_NET });
      const rec = await page.evaluate(() => ({ got: window.rec.got, reconnected: window.rec.reconnected, disconnects: window.rec.disconnects }));
      assert.deepEqual(rec.got, [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(rec.reconnected, { recovered: true });
      assert.equal(rec.disconnects.length, 1);
      await page.evaluate(() => window.rec.s.disconnect());
      // While the proxy refused connections Chromium logs each failed
      // reconnection attempt (the network's, not the page's): only those
      // are expected, and only during the gap.
      const unexpected = page.errors.filter((e) => !(
        e.at >= dropAt && e.at <= upAt + 1000 &&
        /ERR_CONNECTION_(REFUSED|RESET|CLOSED|ABORTED)|ERR_SOCKET_NOT_CONNECTED|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/.test(e.text)
      ));
      assert.deepEqual(unexpected.map((e) => e.text), [], "console errors");
      page.errors.length = 0;
    });
  }
});

describe("a browser client hears a Node client through another node (Redis)", { timeout: 10 * SAFETY_NET }, () => {
  let browser, redis, a, b, origin, page, nodeClient;

  before(async () => {
    redis = await startRedis();
    browser = await launch();
    a = await startServer(["--adapter", "redis", "--redis-url", redis.url]);
    b = await startServer(["--adapter", "redis", "--redis-url", redis.url]);
    origin = await pageOrigin(bundlePage(a.url));
    page = await openPage(browser, origin.url);
  });

  after(async () => {
    nodeClient?.disconnect();
    await browser?.close();
    await origin?.close();
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it("a publish on node B reaches the browser on node A", { timeout: TIMEOUT }, async () => {
    await page.evaluate(async (url) => {
      const s = await connect(url);
      window.heard = new Promise((resolve) => s.once("chat", (...args) => resolve(args[0])));
      await ack(s, "join", "lobby");
    }, a.url);
    nodeClient = nodeIo(b.url, { transports: ["websocket"], forceNew: true });
    await new Promise((resolve, reject) => { nodeClient.once("connect", resolve); nodeClient.once("connect_error", reject); });
    const res = await nodeClient.timeout(SAFETY_NET).emitWithAck("publish", { room: "lobby", event: "chat", data: { from: "node", text: "hi" } });
    assert.deepEqual(res, { ok: true });
    const got = await page.evaluate(() => window.heard);
    assert.deepEqual(got, { from: "node", text: "hi" });
    assert.deepEqual(page.errors.map((e) => e.text), [], "console errors");
  });
});
