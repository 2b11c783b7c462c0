// RECOVERY AND AUTH: a client whose token expired while it was offline is
// refused (connect_error) on its first reconnect; it refreshes the token and
// retries within the window: its session is still there, with everything
// it missed, including what was sent during the refused attempt.
import { describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { scenario, SAFETY_NET, useServer, ack, nextEvent, waitFor, connected, within } from "./lib/harness.mjs";
import { TARGET } from "./lib/server.mjs";
import { startRedis } from "./lib/cluster.mjs";
import { apiEmit, signHS256 } from "./lib/raw.mjs";

const SECRET = "test-secret-0123456789";
const now = () => Math.floor(Date.now() / 1000);
const token = (sub, exp = now() + 600) => signHS256({ sub, iat: now() - 1200, exp }, SECRET);
const WS = { transports: ["websocket"] };

async function emit(srv, room, n) {
  const res = await apiEmit(srv, { rooms: [room], event: "m", data: n });
  assert.equal(res.status, 200, res.text);
}

/** Reconnects `c` with its current auth; resolves with the connect_error. */
function refused(c) {
  const p = within(SAFETY_NET, new Promise((resolve, reject) => {
    c.once("connect", () => reject(new Error("connected with a bad token")));
    c.once("connect_error", resolve);
  }), "connect_error");
  c.connect();
  return p;
}

function suite(name, extra, setup = async () => {}) {
  describe(name, () => {
    const args = ["--jwt-secret", SECRET, "--recovery-window", "2m", ...extra];
    before(setup);
    const srv = useServer(args);

    scenario("a refused reconnect keeps the session; the retry with a fresh token recovers all", async (s) => {
      const room = `auth-${name}`;
      const c = await s.client(srv().url, { ...WS, auth: { token: token("dana") } });
      const got = [];
      c.on("m", (n) => got.push(n));
      assert.deepEqual(await ack(c, "join", room), { ok: true });
      const first = nextEvent(c, "m");
      await emit(srv(), room, 0);
      assert.equal((await first)[0], 0);
      const id = c.id;

      const gone = nextEvent(c, "disconnect");
      c.io.engine.close();
      await gone;
      for (let i = 1; i <= 5; i++) await emit(srv(), room, i);

      // Offline, the token expired: the first reconnect is refused.
      c.auth = { token: token("dana", now() - 60) };
      const err = await refused(c);
      assert.equal(err.message, "unauthorized");
      for (let i = 6; i <= 10; i++) await emit(srv(), room, i);

      // The app refreshes the token and retries, within the window.
      c.auth = { token: token("dana") };
      c.connect();
      await connected(c);
      assert.equal(c.recovered, true, "recovered after a refused attempt");
      assert.equal(c.id, id);
      await waitFor(() => got.length >= 11, { timeout: SAFETY_NET, what: `11 messages (have ${JSON.stringify(got)})` });
      await emit(srv(), room, 11); // still in its room
      await waitFor(() => got.length >= 12, { timeout: SAFETY_NET, what: "a message after recovery" });
      await ack(c, "echo", 0);
      assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i), "every message once, in order");
      // the user room of the new token is joined too
      const dm = nextEvent(c, "dm");
      const res = await apiEmit(srv(), { rooms: ["user:dana"], event: "dm", data: 1 });
      assert.equal(res.status, 200, res.text);
      assert.equal((await dm)[0], 1);
    });
  });
}

suite("memory", []);

describe("redis-streams", { skip: TARGET !== "roomcast" && "roomcast only" }, () => {
  let redis;
  const extra = ["--adapter", "redis-streams"];
  before(async () => { redis = await startRedis(); extra.push("--redis-url", redis.url); });
  suite("streams", extra);
  after(async () => { await redis?.stop(); });
});
