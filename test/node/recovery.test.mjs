// Connection state recovery: a client whose transport drops gets, on
// reconnect within --recovery-window, everything it missed, once, in order.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, sleep, waitFor, upgraded, connected } from "./lib/harness.mjs";
import { apiEmit } from "./lib/raw.mjs";

const N = 25;

/** Joins `room` and receives one broadcast, so the client holds a recovery offset. */
async function joinAndWarmUp(srv, c, room) {
  assert.deepEqual(await ack(c, "join", room), { ok: true });
  const got = nextEvent(c, "m");
  assert.equal((await apiEmit(srv, { rooms: [room], event: "m", data: 0 })).status, 200);
  assert.equal((await got)[0], 0);
}

/** Drops the transport from the client side and waits for the client's disconnect. */
async function dropTransport(c) {
  const gone = nextEvent(c, "disconnect");
  c.io.engine.close();
  const [reason] = await gone;
  return reason;
}

async function emitNumbers(srv, room, from, to) {
  for (let i = from; i <= to; i++) {
    const res = await apiEmit(srv, { rooms: [room], event: "m", data: i });
    assert.equal(res.status, 200, res.text);
  }
}

describe("connection state recovery", () => {
  const srv = useServer(["--recovery-window", "2m"]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario(`missed messages arrive exactly once, in order, and recovered === true`, async (s) => {
        const room = `rec-${name}`;
        const c = await s.client(srv().url, opts); // reconnection off: we reconnect by hand
        const got = [];
        c.on("m", (n) => got.push(n));
        await joinAndWarmUp(srv(), c, room);
        if (name === "upgrade") await upgraded(c);
        const id = c.id;
        assert.equal(c.recovered, false, "first connection is not a recovery");

        const reason = await dropTransport(c);
        s.note(`client disconnect reason: ${reason}`);
        await sleep(200); // let the server notice the close
        await emitNumbers(srv(), room, 1, N);

        c.connect();
        await connected(c);
        assert.equal(c.recovered, true, "socket.recovered after reconnecting within the window");
        assert.equal(c.id, id, "a recovered socket keeps its id");
        await waitFor(() => got.length >= N + 1, { what: `${N} missed messages (have ${got.length - 1})` });
        // still in the room after recovery
        await emitNumbers(srv(), room, N + 1, N + 1);
        await waitFor(() => got.length >= N + 2, { what: "a message after recovery" });
        await ack(c, "echo", 0);
        await sleep(100);
        assert.deepEqual(got, Array.from({ length: N + 2 }, (_, i) => i), "every message once, in order");
      });

      scenario("automatic reconnection recovers too", async (s) => {
        const room = `auto-${name}`;
        const c = await s.client(srv().url, {
          ...opts, reconnection: true, reconnectionDelay: 800, reconnectionDelayMax: 800, randomizationFactor: 0,
        });
        const got = [];
        c.on("m", (n) => got.push(n));
        await joinAndWarmUp(srv(), c, room);
        if (name === "upgrade") await upgraded(c);
        const back = nextEvent(c, "connect", 10_000);
        await dropTransport(c);
        await emitNumbers(srv(), room, 1, N);
        await back;
        assert.equal(c.recovered, true);
        await waitFor(() => got.length >= N + 1, { what: `${N} missed messages (have ${got.length - 1})` });
        await ack(c, "echo", 0);
        await sleep(100);
        assert.deepEqual(got, Array.from({ length: N + 1 }, (_, i) => i));
      });
    });
  }

  scenario("messages to other rooms are not replayed", async (s) => {
    const c = await s.client(srv().url, { transports: ["websocket"] });
    const got = [];
    c.on("m", (n) => got.push(n));
    await joinAndWarmUp(srv(), c, "mine");
    await dropTransport(c);
    await sleep(200);
    await apiEmit(srv(), { rooms: ["not-mine"], event: "m", data: -1 });
    await apiEmit(srv(), { rooms: ["mine"], event: "m", data: 1 });
    c.connect();
    await connected(c);
    assert.equal(c.recovered, true);
    await waitFor(() => got.length >= 2, { what: "the replayed message" });
    await ack(c, "echo", 0);
    await sleep(100);
    assert.deepEqual(got, [0, 1]);
  });

  describe("--recovery-window 1s", () => {
    const short = useServer(["--recovery-window", "1s"]);
    for (const { name, opts } of TRANSPORTS) {
      scenario(`${name}: after a 2 s gap the session is not recovered`, async (s) => {
        const room = `late-${name}`;
        const c = await s.client(short().url, opts);
        const got = [];
        c.on("m", (n) => got.push(n));
        await joinAndWarmUp(short(), c, room);
        if (name === "upgrade") await upgraded(c);
        const id = c.id;
        await dropTransport(c);
        await sleep(200);
        await emitNumbers(short(), room, 1, 3);
        await sleep(1800);
        c.connect();
        await connected(c);
        assert.equal(c.recovered, false, "recovered after the window expired");
        assert.notEqual(c.id, id, "a fresh session gets a new id");
        // a fresh session is in no room: neither the missed nor new room messages arrive
        await emitNumbers(short(), room, 4, 4);
        await ack(c, "echo", 0);
        await sleep(200);
        assert.deepEqual(got, [0]);
      });
    }
  });

  describe("--recovery-window 0", () => {
    const off = useServer(["--recovery-window", "0"]);
    scenario("recovery disabled: reconnect is a fresh session", async (s) => {
      const c = await s.client(off().url, { transports: ["websocket"] });
      const got = [];
      c.on("m", (...a) => got.push(a));
      await ack(c, "join", "r");
      const first = nextEvent(c, "m");
      await apiEmit(off(), { rooms: ["r"], event: "m", data: 0 });
      assert.deepEqual(await first, [0], "no offset argument when recovery is off");
      await dropTransport(c);
      await sleep(100);
      await apiEmit(off(), { rooms: ["r"], event: "m", data: 1 });
      c.connect();
      await connected(c);
      assert.ok(!c.recovered, `recovered is ${c.recovered}`);
      await ack(c, "echo", 0);
      await sleep(100);
      assert.deepEqual(got, [[0]]);
    });
  });
});
