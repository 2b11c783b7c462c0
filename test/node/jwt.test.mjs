// --jwt-secret: CONNECT needs auth.token (HS256); sub → room user:<sub>.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, sleep } from "./lib/harness.mjs";
import { apiEmit, signHS256 } from "./lib/raw.mjs";

const SECRET = "test-secret-0123456789";
const now = () => Math.floor(Date.now() / 1000);
const token = (sub, extra = {}) => signHS256({ sub, iat: now(), exp: now() + 600, ...extra }, SECRET);

describe("jwt", () => {
  const srv = useServer(["--jwt-secret", SECRET, "--namespaces", "^/tenant-[a-z]+$"]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario("no token → connect_error 'unauthorized'", async (s) => {
        const err = await s.connectError(srv().url, opts);
        assert.equal(err.message, "unauthorized");
      });

      scenario("valid HS256 token connects and HTTP emit to user:<sub> reaches it", async (s) => {
        const sub = `alice-${name}`;
        const c = await s.client(srv().url, { ...opts, auth: { token: token(sub) } });
        const got = nextEvent(c, "dm");
        const res = await apiEmit(srv(), { namespace: "/", rooms: [`user:${sub}`], event: "dm", data: { hi: sub } });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual((await got)[0], { hi: sub });
      });
    });
  }

  scenario("bad tokens are refused with 'unauthorized'", async (s) => {
    const bad = {
      "wrong secret": signHS256({ sub: "u", exp: now() + 600 }, "another-secret"),
      expired: token("u", { exp: now() - 60 }),
      "alg none": `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "u", exp: now() + 600 })).toString("base64url")}.`,
      "tampered payload": (() => {
        const [h, , sig] = token("u").split(".");
        return `${h}.${Buffer.from(JSON.stringify({ sub: "admin", exp: now() + 600 })).toString("base64url")}.${sig}`;
      })(),
      garbage: "not.a.jwt",
      "not a string": 12345,
    };
    for (const [what, tok] of Object.entries(bad)) {
      const err = await s.connectError(srv().url, { transports: ["websocket"], auth: { token: tok } });
      assert.equal(err.message, "unauthorized", what);
    }
  });

  scenario("the token is also required on a dynamic namespace", async (s) => {
    const err = await s.connectError(`${srv().url}/tenant-a`, { transports: ["websocket"] });
    assert.equal(err.message, "unauthorized");
    const c = await s.client(`${srv().url}/tenant-a`, { transports: ["websocket"], auth: { token: token("bob") } });
    assert.equal(await ack(c, "echo", 1), 1);
  });

  scenario("user:<sub> reaches every socket of that user and nobody else", async (s) => {
    const opts = { transports: ["websocket"] };
    const a1 = await s.client(srv().url, { ...opts, auth: { token: token("carol") } });
    const a2 = await s.client(srv().url, { ...opts, auth: { token: token("carol") } });
    const other = await s.client(srv().url, { ...opts, auth: { token: token("dave") } });
    let leaked = 0;
    other.on("dm", () => leaked++);
    const g1 = nextEvent(a1, "dm");
    const g2 = nextEvent(a2, "dm");
    const res = await apiEmit(srv(), { rooms: ["user:carol"], event: "dm", data: "for carol" });
    assert.equal(res.status, 200, res.text);
    assert.equal((await g1)[0], "for carol");
    assert.equal((await g2)[0], "for carol");
    await ack(other, "echo", 0);
    await sleep(50);
    assert.equal(leaked, 0, "dave got carol's message");
  });

  scenario("clients cannot join or leave user: rooms", async (s) => {
    const c = await s.client(srv().url, { transports: ["websocket"], auth: { token: token("eve") } });
    const j = await ack(c, "join", "user:carol");
    assert.equal(typeof j?.error, "string", `join user:carol → ${JSON.stringify(j)}`);
    const l = await ack(c, "leave", "user:eve");
    assert.equal(typeof l?.error, "string", `leave user:eve → ${JSON.stringify(l)}`);
    // still in its own user room
    const got = nextEvent(c, "dm");
    await apiEmit(srv(), { rooms: ["user:eve"], event: "dm", data: 1 });
    assert.equal((await got)[0], 1);
  });
});
