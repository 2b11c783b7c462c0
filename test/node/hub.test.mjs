// The hub protocol: join / leave / publish / echo and their acks.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, sleep, upgraded, waitFor } from "./lib/harness.mjs";

const VALID_ROOMS = ["a", "x".repeat(128), "AZaz09_-:./@#", "chat/general", "team@corp#1"];
const INVALID_ROOMS = ["", "x".repeat(129), "has space", "tab\there", "new\nline", "émoji", "sémi;colon", "q?uery", 123, null, { room: "a" }, ["a"], true];
const ECHO_VALUES = ["hello", "", 0, 42.5, -1, true, false, null, [], {}, [1, "two", { three: [3] }], { nested: { deep: { a: [null, true, "x"] } } }, "ünïcødé ✓ 🚀"];

/** Counts `event` on `socket`; `.n` and `.args`. */
function counter(socket, event) {
  const c = { n: 0, args: [] };
  socket.on(event, (...a) => { c.n++; c.args.push(a); });
  return c;
}

describe("hub protocol", () => {
  const srv = useServer([]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario("join and leave ack {ok:true}; after leave no more messages", async (s) => {
        const a = await s.client(srv().url, opts);
        const b = await s.client(srv().url, opts);
        assert.deepEqual(await ack(a, "join", "room1"), { ok: true });
        const got = nextEvent(a, "msg");
        assert.deepEqual(await ack(b, "publish", { room: "room1", event: "msg", data: "first" }), { ok: true });
        assert.equal((await got)[0], "first");
        assert.deepEqual(await ack(a, "leave", "room1"), { ok: true });
        const after = counter(a, "msg");
        assert.deepEqual(await ack(b, "publish", { room: "room1", event: "msg", data: "second" }), { ok: true });
        await ack(a, "echo", 0);
        await sleep(100);
        assert.equal(after.n, 0, "received a publish after leaving the room");
        if (name === "upgrade") await upgraded(a);
      });

      scenario("valid room names are accepted", async (s) => {
        const a = await s.client(srv().url, opts);
        for (const room of VALID_ROOMS) {
          assert.deepEqual(await ack(a, "join", room), { ok: true }, `join ${room}`);
          assert.deepEqual(await ack(a, "leave", room), { ok: true }, `leave ${room}`);
        }
      });

      scenario("invalid room names get {error}", async (s) => {
        const a = await s.client(srv().url, opts);
        for (const room of INVALID_ROOMS) {
          for (const ev of ["join", "leave"]) {
            const r = await ack(a, ev, room);
            assert.equal(typeof r?.error, "string", `${ev} ${JSON.stringify(room)} → ${JSON.stringify(r)}`);
            assert.ok(r.error.length > 0);
            assert.equal(r.ok, undefined, `${ev} ${JSON.stringify(room)} has both ok and error`);
          }
          const p = await ack(a, "publish", { room, event: "e", data: 1 });
          assert.equal(typeof p?.error, "string", `publish to ${JSON.stringify(room)} → ${JSON.stringify(p)}`);
        }
        const r = await ack(a, "join"); // no argument at all
        assert.equal(typeof r?.error, "string", `join without a room → ${JSON.stringify(r)}`);
      });

      scenario("publish reaches the room, not the publisher (no --publish-self)", async (s) => {
        const pub = await s.client(srv().url, opts);
        const subs = await Promise.all([1, 2, 3].map(() => s.client(srv().url, opts)));
        const outsider = await s.client(srv().url, opts);
        await ack(pub, "join", "news");
        for (const c of subs) await ack(c, "join", "news");
        const own = counter(pub, "headline");
        const leaked = counter(outsider, "headline");
        const gots = subs.map((c) => nextEvent(c, "headline"));
        const data = { title: "t", n: [1, 2, 3] };
        assert.deepEqual(await ack(pub, "publish", { room: "news", event: "headline", data }), { ok: true });
        for (const g of gots) assert.deepEqual((await g)[0], data);
        await ack(pub, "echo", 0); // anything queued for the publisher arrives before this ack
        await ack(outsider, "echo", 0);
        await sleep(100);
        assert.equal(own.n, 0, "publisher received its own message without --publish-self");
        assert.equal(leaked.n, 0, "a socket outside the room received the message");
      });

      scenario("a publisher need not be in the room", async (s) => {
        const member = await s.client(srv().url, opts);
        const pub = await s.client(srv().url, opts);
        await ack(member, "join", "lobby");
        const got = nextEvent(member, "hi");
        assert.deepEqual(await ack(pub, "publish", { room: "lobby", event: "hi", data: [1, "a"] }), { ok: true });
        assert.deepEqual((await got)[0], [1, "a"]);
      });

      scenario("a socket in two rooms gets a publish to one of them once", async (s) => {
        const a = await s.client(srv().url, opts);
        const b = await s.client(srv().url, opts);
        await ack(a, "join", "r1");
        await ack(a, "join", "r2");
        const got = counter(a, "once");
        await ack(b, "publish", { room: "r1", event: "once", data: 1 });
        await ack(b, "publish", { room: "r2", event: "once", data: 2 });
        await ack(b, "publish", { room: "r1", event: "once", data: 3 });
        await waitFor(() => got.n >= 3, { what: "the 3 publishes" });
        await ack(a, "echo", 0);
        await sleep(100);
        assert.deepEqual(got.args.map((x) => x[0]), [1, 2, 3]);
      });

      scenario("malformed publish requests get {error}", async (s) => {
        const a = await s.client(srv().url, opts);
        for (const msg of [undefined, null, "room", 42, [], { room: "r" }, { room: "r", event: "" }, { room: "r", event: 5 }, { event: "e", data: 1 }]) {
          const r = await ack(a, "publish", msg);
          assert.equal(typeof r?.error, "string", `publish ${JSON.stringify(msg)} → ${JSON.stringify(r)}`);
        }
      });

      scenario("publish of a Socket.IO reserved event name gets {error}", async (s) => {
        const a = await s.client(srv().url, opts);
        const b = await s.client(srv().url, opts);
        await ack(b, "join", "r");
        let spurious = 0;
        b.on("disconnecting", () => spurious++);
        b.on("disconnect", () => spurious++);
        for (const event of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
          const r = await ack(a, "publish", { room: "r", event, data: 1 });
          // socket.io-client treats an incoming EVENT with a reserved name as a parse
          // error and drops the connection: one publish would disconnect the whole room
          assert.equal(typeof r?.error, "string", `publish event ${event} → ${JSON.stringify(r)}`);
        }
        await ack(b, "echo", 0);
        assert.equal(spurious, 0);
        assert.ok(b.connected, "a room member was disconnected");
      });

      scenario("echo acks the same value", async (s) => {
        const a = await s.client(srv().url, opts);
        for (const v of ECHO_VALUES) assert.deepEqual(await ack(a, "echo", v), v, `echo ${JSON.stringify(v)}`);
        const big = { s: "y".repeat(100_000), arr: Array.from({ length: 1000 }, (_, i) => i) };
        assert.deepEqual(await ack(a, "echo", big), big);
        a.emit("echo", "no ack requested"); // must be harmless
        assert.equal(await ack(a, "echo", "after"), "after");
      });
    });
  }

  describe("--publish-self", () => {
    const self = useServer(["--publish-self"]);
    for (const { name, opts } of TRANSPORTS) {
      scenario(`${name}: the publisher receives its own message too`, async (s) => {
        const pub = await s.client(self().url, opts);
        const other = await s.client(self().url, opts);
        await ack(pub, "join", "r");
        await ack(other, "join", "r");
        const mine = nextEvent(pub, "e");
        const theirs = nextEvent(other, "e");
        assert.deepEqual(await ack(pub, "publish", { room: "r", event: "e", data: "x" }), { ok: true });
        assert.equal((await mine)[0], "x");
        assert.equal((await theirs)[0], "x");
      });
    }
  });

  describe("--allow-publish=false", () => {
    const ro = useServer(["--allow-publish=false"]);
    for (const { name, opts } of TRANSPORTS) {
      scenario(`${name}: publish gets {error} and nothing is delivered`, async (s) => {
        const pub = await s.client(ro().url, opts);
        const other = await s.client(ro().url, opts);
        assert.deepEqual(await ack(other, "join", "r"), { ok: true });
        const got = counter(other, "e");
        const r = await ack(pub, "publish", { room: "r", event: "e", data: 1 });
        assert.equal(typeof r?.error, "string", JSON.stringify(r));
        assert.equal(r.ok, undefined);
        await ack(other, "echo", 0);
        await sleep(100);
        assert.equal(got.n, 0);
        assert.equal(await ack(pub, "echo", "still works"), "still works");
      });
    }
  });
});
