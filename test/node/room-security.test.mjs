// Rooms a client may not use: other sockets' id rooms (10.7), rooms beyond
// --max-rooms-per-socket (10.6), rooms outside the JWT "rooms" claim (10.8).
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, ack, nextEvent } from "./lib/harness.mjs";
import { apiEmit, signHS256 } from "./lib/raw.mjs";

const WS = { transports: ["websocket"] };
const SECRET = "room-security-secret-0123";
const now = () => Math.floor(Date.now() / 1000);
const token = (sub, extra = {}) => signHS256({ sub, iat: now(), exp: now() + 600, ...extra }, SECRET);

/** Records the first argument of every `event` that `c` receives. */
function collect(c, event) {
  const got = [];
  c.on(event, (...args) => got.push(args[0]));
  return got;
}

describe("socket-id rooms are reserved", () => {
  const srv = useServer(["--recovery-window", "0"]);

  scenario("join, publish and leave of a socket id room are refused; the victim gets nothing", async (s) => {
    const victim = await s.client(srv().url, WS);
    const attacker = await s.client(srv().url, WS);
    const leaked = collect(attacker, "secret");
    const injected = collect(victim, "injected");

    const join = await ack(attacker, "join", victim.id);
    assert.match(String(join?.error), /socket id/, `join of another socket's id: ${JSON.stringify(join)}`);
    const pub = await ack(attacker, "publish", { room: victim.id, event: "injected", data: "x" });
    assert.match(String(pub?.error), /socket id/, `publish to another socket's id: ${JSON.stringify(pub)}`);
    const leave = await ack(victim, "leave", victim.id);
    assert.match(String(leave?.error), /socket id/, `leave of its own id: ${JSON.stringify(leave)}`);

    // Something for the victim's id room reaches the victim only: the HTTP
    // API (trusted) sends it, then a marker to the attacker alone; both go
    // through one node in order, so the marker arriving means the secret
    // would have arrived before it.
    const secret = nextEvent(victim, "secret");
    assert.equal((await apiEmit(srv(), { rooms: [victim.id], event: "secret", data: "s" })).status, 200);
    await secret;
    const marker = nextEvent(attacker, "marker");
    assert.equal((await apiEmit(srv(), { rooms: [attacker.id], event: "marker", data: 1 })).status, 200);
    await marker;
    assert.deepEqual(leaked, [], "the attacker received nothing of the victim's room");
    assert.deepEqual(injected, [], "nothing was injected into the victim");
  });

  scenario("a 20-character room that is not a socket id shape still works", async (s) => {
    const c = await s.client(srv().url, WS);
    // 20 characters but with a ':' — not a socket id shape.
    assert.deepEqual(await ack(c, "join", "chat:general-room-01"), { ok: true });
    assert.deepEqual(await ack(c, "join", "a".repeat(21)), { ok: true });
  });
});

describe("rooms per socket", () => {
  const srv = useServer(["--max-rooms-per-socket", "5"]);

  scenario("a join beyond --max-rooms-per-socket gets {error}; leaving frees a place", async (s) => {
    const c = await s.client(srv().url, WS);
    // The socket's own id room counts: 4 joins fill 5 places.
    for (let i = 0; i < 4; i++) assert.deepEqual(await ack(c, "join", `r${i}`), { ok: true }, `join r${i}`);
    const over = await ack(c, "join", "r4");
    assert.match(String(over?.error), /too many rooms/, JSON.stringify(over));
    assert.deepEqual(await ack(c, "join", "r0"), { ok: true }, "re-joining a room it is in succeeds");
    assert.deepEqual(await ack(c, "leave", "r0"), { ok: true });
    assert.deepEqual(await ack(c, "join", "r4"), { ok: true }, "after a leave there is room again");
  });
});

describe("JWT rooms claim", () => {
  const srv = useServer(["--jwt-secret", SECRET]);

  scenario("patterns allow join and publish; everything else is refused", async (s) => {
    const limited = await s.client(srv().url, { ...WS, auth: { token: token("ann", { rooms: ["chat:*", "news"] }) } });
    const free = await s.client(srv().url, { ...WS, auth: { token: token("bob") } });
    const none = await s.client(srv().url, { ...WS, auth: { token: token("cid", { rooms: [] }) } });

    for (const room of ["chat:a", "chat:", "news"]) {
      assert.deepEqual(await ack(limited, "join", room), { ok: true }, `join ${room}`);
    }
    for (const room of ["newsroom", "chat", "other"]) {
      const r = await ack(limited, "join", room);
      assert.match(String(r?.error), /not allowed/, `join ${room}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(await ack(limited, "leave", "other"), { ok: true }, "leave is not limited by the claim");

    // Publish: allowed into news, refused into other; bob (no claim) receives only the allowed one.
    assert.deepEqual(await ack(free, "join", "other"), { ok: true });
    assert.deepEqual(await ack(free, "join", "news"), { ok: true });
    const seen = collect(free, "msg");
    const denied = await ack(limited, "publish", { room: "other", event: "msg", data: "denied" });
    assert.match(String(denied?.error), /not allowed/, JSON.stringify(denied));
    const got = nextEvent(free, "msg");
    assert.deepEqual(await ack(limited, "publish", { room: "news", event: "msg", data: "allowed" }), { ok: true });
    await got;
    assert.deepEqual(seen, ["allowed"]);

    // An empty claim allows no room at all; no claim allows any non-reserved room.
    const r = await ack(none, "join", "news");
    assert.match(String(r?.error), /not allowed/, JSON.stringify(r));
    assert.deepEqual(await ack(free, "join", "anything"), { ok: true });
  });

  scenario("a malformed rooms claim is refused at connect", async (s) => {
    for (const rooms of ["chat:*", [1], ["a*b"], [""]]) {
      const err = await s.connectError(srv().url, { ...WS, auth: { token: token("eve", { rooms }) } });
      assert.equal(err.message, "unauthorized", JSON.stringify(rooms));
      assert.match(String(err.data?.reason), /rooms/, JSON.stringify(err.data));
    }
  });
});

