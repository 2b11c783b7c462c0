// Socket.IO CONNECT: the main namespace with and without auth, unknown
// namespaces, dynamic namespaces matching --namespaces, multiplexing.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, upgraded, sleep } from "./lib/harness.mjs";

const PATTERN = "^/tenant-[a-z0-9]+$";

describe("connect", () => {
  const srv = useServer(["--namespaces", PATTERN]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario("connects to / without auth and answers echo", async (s) => {
        const c = await s.client(srv().url, opts);
        assert.equal(typeof c.id, "string");
        assert.ok(c.id.length > 0);
        assert.equal(await ack(c, "echo", "hello"), "hello");
        if (name === "upgrade") await upgraded(c);
      });

      scenario("connects to / with an auth payload (ignored without --jwt-secret)", async (s) => {
        const c = await s.client(srv().url, { ...opts, auth: { token: "not-checked", foo: [1, 2] } });
        assert.deepEqual(await ack(c, "echo", { a: 1 }), { a: 1 });
      });

      scenario("unknown namespace gets connect_error 'Invalid namespace'", async (s) => {
        const err = await s.connectError(`${srv().url}/nope`, opts);
        assert.equal(err.message, "Invalid namespace");
      });

      scenario("dynamic namespace matching --namespaces speaks the hub protocol", async (s) => {
        const url = `${srv().url}/tenant-abc1`;
        const a = await s.client(url, opts);
        const b = await s.client(url, opts);
        assert.deepEqual(await ack(a, "join", "lobby"), { ok: true });
        assert.deepEqual(await ack(b, "join", "lobby"), { ok: true });
        const got = nextEvent(a, "news");
        assert.deepEqual(await ack(b, "publish", { room: "lobby", event: "news", data: { n: 1 } }), { ok: true });
        assert.deepEqual((await got)[0], { n: 1 }); // [1] is the recovery offset while recovery is on
        assert.equal(await ack(a, "echo", "x"), "x");
      });

      scenario("namespace not matching --namespaces gets connect_error", async (s) => {
        for (const nsp of ["/tenant-ABC", "/tenant-", "/xtenant-abc"]) {
          const err = await s.connectError(`${srv().url}${nsp}`, opts);
          assert.equal(err.message, "Invalid namespace", nsp);
        }
      });
    });
  }

  scenario("rooms are per namespace: a publish in / does not reach /tenant-x", async (s) => {
    const root = await s.client(srv().url, { transports: ["websocket"] });
    const tenant = await s.client(`${srv().url}/tenant-x`, { transports: ["websocket"] });
    const other = await s.client(srv().url, { transports: ["websocket"] });
    await ack(root, "join", "shared");
    await ack(tenant, "join", "shared");
    let leaked = 0;
    tenant.on("ping-room", () => leaked++);
    const got = nextEvent(root, "ping-room");
    await ack(other, "publish", { room: "shared", event: "ping-room", data: 1 });
    await got;
    await ack(tenant, "echo", 0); // round trip on the tenant connection
    await sleep(100);
    assert.equal(leaked, 0, "tenant socket received a publish from namespace /");
  });

  scenario("one connection multiplexes / and a dynamic namespace", async (s) => {
    const m = s.manager(srv().url, { transports: ["websocket"] });
    const root = m.socket("/");
    const tenant = m.socket("/tenant-mux");
    await Promise.all([nextEvent(root, "connect"), nextEvent(tenant, "connect")]);
    assert.equal(root.io.engine, tenant.io.engine, "both sockets share one engine connection");
    assert.notEqual(root.id, tenant.id);
    await ack(root, "join", "r");
    await ack(tenant, "join", "r");
    const peer = await s.client(`${srv().url}/tenant-mux`, { transports: ["websocket"] });
    let rootGot = 0;
    root.on("evt", () => rootGot++);
    const got = nextEvent(tenant, "evt");
    await ack(peer, "publish", { room: "r", event: "evt", data: "t" });
    assert.equal((await got)[0], "t");
    await ack(root, "echo", 0);
    assert.equal(rootGot, 0);
    tenant.disconnect(); // leaving one namespace keeps the other working
    assert.equal(await ack(root, "echo", "still"), "still");
  });

  describe("raw CONNECT packets", () => {
    scenario("CONNECT without payload, with {} and with an object all succeed", async (s) => {
      for (const auth of [undefined, {}, { anything: 1 }]) {
        const ws = await s.rawWs(srv());
        const open = await ws.handshake();
        const reply = await ws.connect("/", auth);
        assert.match(reply, /^40\{/, `CONNECT ${JSON.stringify(auth)} → ${reply}`);
        const { sid } = JSON.parse(reply.slice(2));
        assert.equal(typeof sid, "string");
        assert.ok(sid.length > 0);
        assert.equal(typeof open.sid, "string");
        ws.send('421["echo","raw"]');
        assert.equal(await ws.next((m) => m.startsWith("43")), '431["raw"]');
      }
    });

    scenario("CONNECT to an unknown namespace gets a CONNECT_ERROR packet", async (s) => {
      const ws = await s.rawWs(srv());
      await ws.handshake();
      const reply = await ws.connect("/nope");
      assert.equal(reply.slice(0, 8), "44/nope,");
      assert.deepEqual(JSON.parse(reply.slice(8)), { message: "Invalid namespace" });
      // the connection itself stays usable for other namespaces
      assert.match(await ws.connect("/"), /^40\{/);
    });
  });
});
