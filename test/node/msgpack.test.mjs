// --parser msgpack: clients with socket.io-msgpack-parser (each packet one
// binary message, a msgpack map) talk to the server; the default parser on
// either side does not.
import { describe } from "node:test";
import assert from "node:assert/strict";
import parser from "socket.io-msgpack-parser";
import { scenario, useServer, ack, nextEvent, within, SAFETY_NET, TARGET } from "./lib/harness.mjs";
import { apiEmit, signHS256 } from "./lib/raw.mjs";

const MP_TRANSPORTS = [
  { name: "websocket", opts: { parser, transports: ["websocket"] } },
  { name: "polling", opts: { parser, transports: ["polling"] } },
  { name: "upgrade", opts: { parser } },
];

const SECRET = "msgpack-secret-0123456789";
const now = () => Math.floor(Date.now() / 1000);

/** Resolves when the client's connection closes without a CONNECT answer. */
function refused(s, url, opts) {
  const socket = s.socket(url, opts);
  return within(SAFETY_NET, new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("connected with mismatched parsers")));
    socket.io.once("close", (reason) => resolve(reason));
  }), "connection closed");
}

describe("msgpack parser", () => {
  const srv = useServer(["--parser", "msgpack", "--recovery-window", "0", "--namespaces", "^/tenant-[a-z]+$"]);

  for (const { name, opts } of MP_TRANSPORTS) {
    describe(name, () => {
      scenario("events and acks both ways, binary both ways", async (s) => {
        const c = await s.client(srv().url, opts);
        // client → server with ack: the hub's echo answers with the arguments
        const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
        const back = await ack(c, "echo", "text", 42, 1.5, { nested: [true, null, { b: bin }] }, bin);
        assert.equal(back, "text");
        // emitWithAck resolves to the first argument: ask for all of them
        const all = await new Promise((resolve) =>
          c.emit("echo", "text", 42, 1.5, { nested: [true, null, { b: bin }] }, bin, (...a) => resolve(a)));
        assert.equal(all.length, 5);
        assert.deepEqual(all.slice(0, 3), ["text", 42, 1.5]);
        assert.ok(Buffer.isBuffer(all[3].nested[2].b) || all[3].nested[2].b instanceof Uint8Array, "nested binary");
        assert.deepEqual([...all[3].nested[2].b], [...bin]);
        assert.deepEqual([...all[4]], [...bin]);

        // server → client events (a room broadcast with binary) from another client
        const d = await s.client(srv().url, opts);
        assert.deepEqual(await ack(c, "join", "mp-room"), { ok: true });
        const got = nextEvent(c, "news");
        assert.deepEqual(await ack(d, "publish", { room: "mp-room", event: "news", data: { blob: bin, n: 7 } }), { ok: true });
        const [news] = await got;
        assert.equal(news.n, 7);
        assert.deepEqual([...news.blob], [...bin]);
      });

      // The HTTP API's emit with acks is roomcast's.
      scenario("server → client with ack (HTTP API emit waiting for acks)", { skip: TARGET !== "roomcast" && "roomcast only" }, async (s) => {
        const c = await s.client(srv().url, opts);
        assert.deepEqual(await ack(c, "join", "ack-room"), { ok: true });
        c.on("question", (q, cb) => cb({ answer: q * 2, bin: Buffer.from("ok") }));
        const res = await apiEmit(srv(), { rooms: ["ack-room"], event: "question", data: 21, ack: true });
        assert.equal(res.status, 200, res.text);
        const body = res.json();
        assert.equal(body.ok, true);
        assert.equal(body.acks.length, 1);
        assert.equal(body.acks[0].answer, 42);
      });

      scenario("a custom namespace, a room broadcast and an HTTP API emit", async (s) => {
        const m = s.manager(srv().url, opts);
        const a = m.socket("/tenant-mp");
        const b = m.socket("/");
        await Promise.all([a, b].map((x) => new Promise((r) => x.once("connect", r))));
        const other = await s.client(`${srv().url}/tenant-mp`, opts);
        assert.deepEqual(await ack(a, "join", "r"), { ok: true });
        assert.deepEqual(await ack(other, "join", "r"), { ok: true });
        const gotA = nextEvent(a, "hello");
        const gotOther = nextEvent(other, "hello");
        const res = await apiEmit(srv(), { namespace: "/tenant-mp", rooms: ["r"], event: "hello", data: { from: "api", list: [1, 2, 3] } });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(await gotA, [{ from: "api", list: [1, 2, 3] }]);
        assert.deepEqual(await gotOther, [{ from: "api", list: [1, 2, 3] }]);
        // the "/" socket of the same connection is not in the namespace
        const echoed = await ack(b, "echo", "still here");
        assert.equal(echoed, "still here");
      });

      scenario("connect_error for an unknown namespace", async (s) => {
        const err = await s.connectError(`${srv().url}/nope`, opts);
        assert.equal(err.message, "Invalid namespace");
      });
    });
  }

  describe("with auth", () => {
    const jwt = useServer(["--parser", "msgpack", "--recovery-window", "0", "--jwt-secret", SECRET]);

    scenario("connect_error from the auth middleware; CONNECT with auth connects", async (s) => {
      const err = await s.connectError(jwt().url, { parser, transports: ["websocket"], auth: { token: "bad" } });
      assert.equal(err.message, "unauthorized");
      const token = signHS256({ sub: "mp-user", iat: now(), exp: now() + 600 }, SECRET);
      const c = await s.client(jwt().url, { parser, transports: ["websocket"], auth: { token } });
      const got = nextEvent(c, "dm");
      const res = await apiEmit(jwt(), { rooms: ["user:mp-user"], event: "dm", data: "hi" });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(await got, ["hi"]);
    });
  });

  describe("mismatched parsers", () => {
    const jsonSrv = useServer(["--recovery-window", "0"]);

    scenario("a msgpack client cannot talk to a JSON server", async (s) => {
      await refused(s, jsonSrv().url, { parser, transports: ["websocket"] });
      await refused(s, jsonSrv().url, { parser, transports: ["polling"] });
    });

    scenario("a JSON client cannot talk to a msgpack server", async (s) => {
      await refused(s, srv().url, { transports: ["websocket"] });
      await refused(s, srv().url, { transports: ["polling"] });
    });
  });
});
