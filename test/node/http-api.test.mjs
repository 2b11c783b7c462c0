// POST /api/v1/emit, /healthz, /readyz.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, sleep } from "./lib/harness.mjs";
import { apiEmit, request } from "./lib/raw.mjs";

/** Records the arguments of every `event` on `socket`. */
function recorder(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Round trip on each socket so that anything sent to it before has arrived. */
async function flush(...sockets) {
  for (const c of sockets) await ack(c, "echo", 0);
  await sleep(50);
}

describe("http api", () => {
  // recovery off: events carry exactly the arguments sent (no offset argument)
  const srv = useServer(["--recovery-window", "0", "--namespaces", "^/tenant-[a-z]+$"]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario("emit to rooms reaches their members only", async (s) => {
        const [a, b, c] = await Promise.all([1, 2, 3].map(() => s.client(srv().url, opts)));
        await ack(a, "join", "r1");
        await ack(b, "join", "r2");
        await ack(c, "join", "r3");
        const [ga, gb, gc] = [a, b, c].map((x) => recorder(x, "ev"));
        const res = await apiEmit(srv(), { namespace: "/", rooms: ["r1", "r2"], event: "ev", data: { x: 1 } });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.json(), { ok: true });
        await flush(a, b, c);
        assert.deepEqual(ga, [[{ x: 1 }]]);
        assert.deepEqual(gb, [[{ x: 1 }]]);
        assert.deepEqual(gc, []);
      });

      scenario("a socket in several target rooms gets the emit once", async (s) => {
        const a = await s.client(srv().url, opts);
        await ack(a, "join", "r1");
        await ack(a, "join", "r2");
        const ga = recorder(a, "ev");
        assert.equal((await apiEmit(srv(), { rooms: ["r1", "r2"], event: "ev", data: 5 })).status, 200);
        await flush(a);
        assert.deepEqual(ga, [[5]]);
      });

      scenario("except skips the sockets in those rooms", async (s) => {
        const [a, b] = await Promise.all([1, 2].map(() => s.client(srv().url, opts)));
        await ack(a, "join", "r");
        await ack(b, "join", "r");
        await ack(b, "join", "muted");
        const [ga, gb] = [a, b].map((x) => recorder(x, "ev"));
        const res = await apiEmit(srv(), { rooms: ["r"], except: ["muted"], event: "ev", data: "hi" });
        assert.equal(res.status, 200, res.text);
        await flush(a, b);
        assert.deepEqual(ga, [["hi"]]);
        assert.deepEqual(gb, []);
      });

      scenario("no rooms means every socket of the namespace", async (s) => {
        const [a, b] = await Promise.all([1, 2].map(() => s.client(srv().url, opts)));
        const t = await s.client(`${srv().url}/tenant-q`, opts);
        await ack(a, "join", "some-room");
        const [ga, gb, gt] = [a, b, t].map((x) => recorder(x, "all"));
        for (const body of [{ event: "all", data: [1, 2] }, { rooms: [], event: "all", data: [1, 2] }]) {
          const res = await apiEmit(srv(), body);
          assert.equal(res.status, 200, res.text);
        }
        await flush(a, b, t);
        assert.deepEqual(ga, [[[1, 2]], [[1, 2]]]);
        assert.deepEqual(gb, [[[1, 2]], [[1, 2]]]);
        assert.deepEqual(gt, [], "a socket of another namespace got an emit for /");
      });

      scenario("all sockets except a room", async (s) => {
        const [a, b] = await Promise.all([1, 2].map(() => s.client(srv().url, opts)));
        await ack(b, "join", "quiet");
        const [ga, gb] = [a, b].map((x) => recorder(x, "e"));
        assert.equal((await apiEmit(srv(), { except: ["quiet"], event: "e", data: true })).status, 200);
        await flush(a, b);
        assert.deepEqual(ga, [[true]]);
        assert.deepEqual(gb, []);
      });

      scenario("without data the event has no arguments; JSON values pass through", async (s) => {
        const a = await s.client(srv().url, opts);
        await ack(a, "join", "d");
        const ga = recorder(a, "v");
        const values = [null, 0, "", false, "s", { k: [1, { z: null }] }, [[]], 1.5e300, "ünï ✓"];
        assert.equal((await apiEmit(srv(), { rooms: ["d"], event: "v" })).status, 200);
        for (const data of values) assert.equal((await apiEmit(srv(), { rooms: ["d"], event: "v", data })).status, 200);
        await flush(a);
        assert.deepEqual(ga, [[], ...values.map((v) => [v])]);
      });

      scenario("emit into a dynamic namespace", async (s) => {
        const t = await s.client(`${srv().url}/tenant-z`, opts);
        const root = await s.client(srv().url, opts);
        await ack(t, "join", "r");
        await ack(root, "join", "r");
        const [gt, groot] = [t, root].map((x) => recorder(x, "e"));
        const res = await apiEmit(srv(), { namespace: "/tenant-z", rooms: ["r"], event: "e", data: "t" });
        assert.equal(res.status, 200, res.text);
        await flush(t, root);
        assert.deepEqual(gt, [["t"]]);
        assert.deepEqual(groot, []);
      });
    });
  }

  scenario("bad JSON gets 400 with a reason", async () => {
    for (const raw of ["{not json", "", "[1,2", '{"event": "e",}']) {
      const res = await apiEmit(srv(), null, { raw });
      assert.equal(res.status, 400, `${JSON.stringify(raw)} → ${res.status} ${res.text}`);
      const body = res.json();
      assert.equal(typeof body.error, "string", `${JSON.stringify(raw)} → ${res.text}`);
      assert.ok(body.error.length > 0);
    }
  });

  scenario("a request without an event name gets 400 with a reason", async () => {
    for (const payload of [{ rooms: ["r"] }, { rooms: ["r"], event: "" }, { event: 42 }]) {
      const res = await apiEmit(srv(), payload);
      assert.equal(res.status, 400, `${JSON.stringify(payload)} → ${res.status} ${res.text}`);
      assert.equal(typeof res.json().error, "string");
    }
  });

  scenario("a Socket.IO reserved event name gets 400 and reaches nobody", async (s) => {
    // socket.io-client drops the connection on an EVENT with a reserved name
    const a = await s.client(srv().url, { transports: ["websocket"] });
    await ack(a, "join", "r");
    let lost = 0;
    a.on("disconnect", () => lost++);
    for (const event of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
      const res = await apiEmit(srv(), { rooms: ["r"], event, data: 1 });
      assert.equal(res.status, 400, `event ${event} → ${res.status} ${res.text}`);
      assert.equal(typeof res.json().error, "string");
    }
    await flush(a);
    assert.equal(lost, 0, "the room member was disconnected");
  });

  scenario("recovery on: a broadcast event carries the offset as an extra argument", async (s) => {
    const rec = await s.server([]); // default --recovery-window 2m
    const a = await s.client(rec.url, { transports: ["websocket"] });
    await ack(a, "join", "r");
    const got = nextEvent(a, "e");
    assert.equal((await apiEmit(rec, { rooms: ["r"], event: "e", data: "d" })).status, 200);
    const args = await got;
    assert.equal(args[0], "d");
    assert.equal(args.length, 2, `args ${JSON.stringify(args)}`);
    assert.equal(typeof args[1], "string", "offset is a string");
  });

  describe("--api-key", () => {
    const keyed = useServer(["--api-key", "s3cret"]);

    scenario("missing or wrong bearer → 401; right bearer → 200", async (s) => {
      const a = await s.client(keyed().url, { transports: ["websocket"] });
      await ack(a, "join", "r");
      const ga = recorder(a, "e");
      const body = { rooms: ["r"], event: "e", data: 1 };
      assert.equal((await apiEmit(keyed(), body)).status, 401, "no Authorization header");
      assert.equal((await apiEmit(keyed(), body, { key: "wrong" })).status, 401, "wrong key");
      assert.equal((await apiEmit(keyed(), body, { key: "s3cret-and-more" })).status, 401, "key with a suffix");
      assert.equal((await apiEmit(keyed(), body, { key: "" })).status, 401, "empty key");
      const basic = await request(`${keyed().url}/api/v1/emit`, {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Authorization: "Basic czNjcmV0" },
      });
      assert.equal(basic.status, 401, "Basic instead of Bearer");
      await flush(a);
      assert.deepEqual(ga, [], "an unauthorized emit was delivered");
      const ok = await apiEmit(keyed(), body, { key: "s3cret" });
      assert.equal(ok.status, 200, ok.text);
      await flush(a);
      assert.equal(ga.length, 1);
      assert.equal(ga[0][0], 1);
    });
  });

  scenario("/healthz and /readyz answer 200", async () => {
    assert.equal((await request(`${srv().url}/healthz`)).status, 200);
    assert.equal((await request(`${srv().url}/readyz`)).status, 200);
  });
});
