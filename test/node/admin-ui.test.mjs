// The Socket.IO Admin UI's protocol (@socket.io/admin-ui 0.5) on
// `roomcast serve --admin-ui`: credentials (a bcrypt hash), the session id
// the UI keeps, config, all_sockets, server_stats, live events, the
// commands, read-only mode, and a two-node cluster over Redis.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { scenario, useServer, ack, nextEvent, waitFor, within, SAFETY_NET, TARGET } from "./lib/harness.mjs";
import { startServer } from "./lib/server.mjs";
import { startRedis } from "./lib/cluster.mjs";

const skip = TARGET !== "roomcast" && "the admin namespace is roomcast's flag (TARGET=roomcast only)";
const USER = "admin";
const PASSWORD = "s3cret pass";
const HASH = bcrypt.hashSync(PASSWORD, 8);
const adminArgs = (...more) => ["--admin-ui", "--admin-user", USER, "--admin-password-hash", HASH, ...more];
const creds = { auth: { username: USER, password: PASSWORD } };

/** Collects every event an admin socket receives, to wait on later. */
function recorder(socket) {
  const seen = [];
  socket.onAny((event, ...args) => seen.push({ event, args }));
  return {
    seen,
    until: (pred, what) => waitFor(() => seen.find((e) => pred(e)), { what }),
  };
}

/** Connects an admin page and waits for its config and first all_sockets. */
async function adminPage(scope, srv, opts = creds) {
  const socket = scope.socket(`${srv.url}/admin`, opts);
  const rec = recorder(socket);
  const config = nextEvent(socket, "config");
  const all = nextEvent(socket, "all_sockets");
  await within(SAFETY_NET, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (e) => reject(new Error(`admin connect_error: ${e.message}`)));
  }), "admin connect");
  return { socket, rec, config: (await config)[0], all: (await all)[0] };
}

describe("admin UI protocol", { skip }, () => {
  const srv = useServer(adminArgs());

  scenario("wrong credentials get connect_error 'invalid credentials'", async (s) => {
    for (const auth of [{ username: USER, password: "nope" }, { username: "root", password: PASSWORD }, {}, { sessionId: "made-up" }]) {
      const err = await s.connectError(`${srv().url}/admin`, { auth });
      assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
    }
  });

  scenario("config, all_sockets with rooms, live events, _disconnect", async (s) => {
    const user = await s.client(srv().url);
    assert.deepEqual(await ack(user, "join", "lobby"), { ok: true });
    const session = nextEvent(s.socket(`${srv().url}/admin`, creds), "session");
    const page = await adminPage(s, srv());
    assert.deepEqual(page.config.supportedFeatures, ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]);
    const mine = page.all.find((x) => x.id === user.id);
    assert.ok(mine, "all_sockets lists the user socket");
    assert.equal(mine.nsp, "/");
    assert.deepEqual([...mine.rooms].sort(), [user.id, "lobby"].sort());
    assert.equal(mine.transport, "websocket");
    assert.equal(mine.handshake.auth, undefined, "the CONNECT payload is not shown");
    assert.ok(page.all.some((x) => x.nsp === "/admin"), "admin pages are listed too, as the reference does");

    // The session id lets the UI reconnect without the password.
    const [sid] = await session;
    await adminPage(s, srv(), { auth: { sessionId: sid } });

    // server_stats
    const stats = (await page.rec.until((e) => e.event === "server_stats", "server_stats")).args[0];
    assert.equal(typeof stats.serverId, "string");
    assert.equal(typeof stats.uptime, "number");
    assert.ok(stats.clientsCount >= 2);
    assert.ok(stats.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1));

    // Live: a new socket, its join and leave.
    const other = await s.client(srv().url);
    const conn = await page.rec.until((e) => e.event === "socket_connected" && e.args[0].id === other.id, "socket_connected");
    assert.equal(conn.args[0].nsp, "/");
    assert.ok(!Number.isNaN(Date.parse(conn.args[1])), "a timestamp");
    assert.deepEqual(await ack(other, "join", "games"), { ok: true });
    await page.rec.until((e) => e.event === "room_joined" && e.args[0] === "/" && e.args[1] === "games" && e.args[2] === other.id, "room_joined");
    assert.deepEqual(await ack(other, "leave", "games"), { ok: true });
    await page.rec.until((e) => e.event === "room_left" && e.args[1] === "games" && e.args[2] === other.id, "room_left");

    // Commands: join by the UI, then _disconnect of one socket (filter = its id).
    assert.deepEqual(await ack(page.socket, "join", "/", "vip", other.id), { ok: true });
    await page.rec.until((e) => e.event === "room_joined" && e.args[1] === "vip" && e.args[2] === other.id, "room_joined by command");
    const otherId = other.id; // the client forgets it on disconnect
    const gone = nextEvent(other, "disconnect");
    assert.deepEqual(await ack(page.socket, "_disconnect", "/", false, otherId), { ok: true });
    assert.equal((await gone)[0], "io server disconnect");
    const disc = await page.rec.until((e) => e.event === "socket_disconnected" && e.args[1] === otherId, "socket_disconnected");
    assert.equal(disc.args[0], "/");
    assert.equal(typeof disc.args[2], "string");
    assert.ok(user.connected, "the other socket stays");

    // The UI's "emit" to a room.
    const got = nextEvent(user, "notice");
    assert.deepEqual(await ack(page.socket, "emit", "/", "lobby", "notice", { text: "hi" }), { ok: true });
    assert.deepEqual((await got)[0], { text: "hi" }); // then the recovery offset, as any broadcast

    // Bad commands: a namespace that does not exist is not created.
    assert.deepEqual(await ack(page.socket, "_disconnect", "/nowhere", false, ""), { error: "unknown namespace" });
    assert.deepEqual(await ack(page.socket, "join", "/", "", user.id), { error: "bad arguments" });
  });
});

describe("admin UI read-only", { skip }, () => {
  const srv = useServer(adminArgs("--admin-readonly"));

  scenario("no features; commands refused and without effect", async (s) => {
    const user = await s.client(srv().url);
    const page = await adminPage(s, srv());
    assert.deepEqual(page.config.supportedFeatures, []);
    assert.ok(page.all.some((x) => x.id === user.id));
    for (const cmd of [["_disconnect", "/", true, user.id], ["join", "/", "x", user.id], ["leave", "/", user.id, user.id], ["emit", "/", "", "hello"]]) {
      assert.deepEqual(await ack(page.socket, ...cmd), { error: "read-only" }, cmd[0]);
    }
    // The commands ran in order before the acks: the user is still there, in its own room only.
    assert.ok(user.connected);
    assert.deepEqual(await ack(user, "echo", "still here"), "still here");
  });
});

describe("admin UI flags", { skip }, () => {
  scenario("--admin-ui without credentials, or with a plain password, is refused", async () => {
    for (const args of [["--admin-ui"], ["--admin-ui", "--admin-user", "a", "--admin-password-hash", "plain"]]) {
      await assert.rejects(startServer(args, { startTimeout: SAFETY_NET }), /admin/);
    }
  });
});

describe("admin UI across two nodes (Redis)", { skip }, () => {
  let redis, a, b;
  before(async () => {
    redis = await startRedis();
    const cluster = ["--adapter", "redis", "--redis-url", redis.url];
    a = await startServer([...cluster, ...adminArgs("--admin-server-id", "node-a")]);
    b = await startServer([...cluster, ...adminArgs("--admin-server-id", "node-b")]);
  });
  after(async () => { await a?.stop(); await b?.stop(); await redis?.stop(); });

  scenario("a page on node A lists, watches and disconnects a socket on node B, and sees both nodes' stats", async (s) => {
    const onB = await s.client(b.url);
    assert.deepEqual(await ack(onB, "join", "far"), { ok: true });
    const page = await adminPage(s, a);
    const far = page.all.find((x) => x.id === onB.id);
    assert.ok(far, "all_sockets reaches the other node");
    assert.ok(far.rooms.includes("far"));
    await page.rec.until((e) => e.event === "server_stats" && e.args[0].serverId === "node-a", "stats of node A");
    await page.rec.until((e) => e.event === "server_stats" && e.args[0].serverId === "node-b", "stats of node B");
    const later = await s.client(b.url);
    await page.rec.until((e) => e.event === "socket_connected" && e.args[0].id === later.id, "socket_connected from node B");
    const farId = onB.id; // the client forgets it on disconnect
    const gone = nextEvent(onB, "disconnect");
    assert.deepEqual(await ack(page.socket, "_disconnect", "/", false, farId), { ok: true });
    assert.equal((await gone)[0], "io server disconnect");
    await page.rec.until((e) => e.event === "socket_disconnected" && e.args[1] === farId, "socket_disconnected from node B");
  });
});
