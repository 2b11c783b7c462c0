// NO LOSS: many clients in one room, thousands of numbered messages back to
// back; every client gets every message once, in order.
import { describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { scenario, useServer, ack, waitFor, sleep, upgraded, SAFETY_NET } from "./lib/harness.mjs";
import { apiEmit } from "./lib/raw.mjs";

const MESSAGES = 2000;

/** Connects `n` clients, `batch` at a time, joins them to `room`, and tracks what they receive. */
async function roomOf(s, url, n, opts, room, batch = 25) {
  const members = [];
  for (let i = 0; i < n; i += batch) {
    const group = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () => s.client(url, opts, { timeout: 10_000 })),
    );
    for (const c of group) {
      const st = { c, count: 0, next: 1, errors: [], disconnects: 0 };
      c.on("n", (k) => {
        if (k !== st.next && st.errors.length < 5) st.errors.push(`got ${k}, expected ${st.next}`);
        st.next = k + 1;
        st.count++;
      });
      c.on("disconnect", () => st.disconnects++);
      members.push(st);
    }
    await Promise.all(group.map(async (c) => assert.deepEqual(await ack(c, "join", room), { ok: true })));
  }
  return members;
}

/** Waits until every member has `MESSAGES`, then a little longer to catch duplicates. */
async function verify(s, members, t0) {
  const total = () => members.reduce((a, m) => a + m.count, 0);
  try {
    await waitFor(() => members.every((m) => m.count >= MESSAGES), { timeout: 4 * SAFETY_NET, interval: 50, what: "all messages delivered" });
  } finally {
    const elapsed = Date.now() - t0;
    const short = members.filter((m) => m.count < MESSAGES);
    s.note(`${members.length} clients x ${MESSAGES} messages: delivered ${total()} of ${members.length * MESSAGES} in ${elapsed} ms` +
      (short.length ? `; ${short.length} clients short, e.g. counts ${short.slice(0, 5).map((m) => m.count).join(",")}` : ""));
  }
  await sleep(300);
  for (const [i, m] of members.entries()) {
    assert.deepEqual(m.errors, [], `client ${i}: out of order / duplicate / gap`);
    assert.equal(m.count, MESSAGES, `client ${i}: received ${m.count}`);
    assert.equal(m.disconnects, 0, `client ${i} disconnected`);
  }
}

describe("no loss", () => {
  // Debug logging per message would dominate the timing. The queue bound
  // holds the whole burst: a client lagging under machine load must not be
  // cut by the default backpressure here (backpressure.test.mjs covers that).
  const srv = useServer(["--log-level", "info", "--send-queue-packets", "4096"]);

  scenario("200 websocket clients, 2,000 publishes from one client without awaiting acks", { timeout: 300_000 }, async (s) => {
    const members = await roomOf(s, srv().url, 200, { transports: ["websocket"] }, "fan-ws");
    const pub = await s.client(srv().url, { transports: ["websocket"] });
    const acks = [];
    const t0 = Date.now();
    for (let k = 1; k <= MESSAGES; k++) {
      pub.emit("publish", { room: "fan-ws", event: "n", data: k }, (r) => acks.push(r));
    }
    s.note(`publisher queued ${MESSAGES} publishes in ${Date.now() - t0} ms`);
    await verify(s, members, t0);
    await waitFor(() => acks.length === MESSAGES, { what: "all publish acks" });
    assert.ok(acks.every((r) => r?.ok === true), `a publish ack was not {ok:true}: ${JSON.stringify(acks.find((r) => r?.ok !== true))}`);
  });

  scenario("50 polling clients, 2,000 HTTP API emits", { timeout: 300_000 }, async (s) => {
    const members = await roomOf(s, srv().url, 50, { transports: ["polling"] }, "fan-poll", 10);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    s.defer(() => agent.destroy());
    const t0 = Date.now();
    for (let k = 1; k <= MESSAGES; k++) {
      const res = await apiEmit(srv(), { rooms: ["fan-poll"], event: "n", data: k }, { agent });
      if (res.status !== 200) assert.fail(`emit ${k}: HTTP ${res.status} ${res.text}`);
    }
    s.note(`${MESSAGES} sequential HTTP emits took ${Date.now() - t0} ms`);
    await verify(s, members, t0);
  });

  scenario("50 clients joining and upgrading from polling while 2,000 publishes flow", { timeout: 300_000 }, async (s) => {
    // The stream runs for ~2 s. Clients connect over polling with the automatic
    // upgrade off, join, and once they have received a few messages start the
    // upgrade by hand (engine.io-client 6.6's internal _probe, the same call its
    // onOpen makes), so every upgrade happens mid-stream. Each client must get
    // an unbroken run from its first message to the last, starting no later
    // than the first publish sent after its join was acked.
    const pub = await s.client(srv().url, { transports: ["websocket"] });
    let published = 0;
    const acks = [];
    const members = [];
    const t0 = Date.now();
    const stream = (async () => {
      for (let k = 1; k <= MESSAGES; k++) {
        pub.emit("publish", { room: "fan-up", event: "n", data: k }, (r) => acks.push(r));
        published = k;
        if (k % 10 === 0) await sleep(10);
      }
    })();
    await sleep(200);
    await Promise.all(Array.from({ length: 50 }, async () => {
      const c = s.socket(srv().url, { timeout: 10_000, upgrade: false });
      assert.equal(typeof c.io.engine._probe, "function", "engine.io-client has no _probe(): update this test");
      const st = { c, first: 0, last: 0, count: 0, errors: [], joinedAt: 0, atUpgrade: -1, disconnects: 0 };
      members.push(st);
      c.on("n", (k) => {
        if (st.first === 0) st.first = k;
        else if (k !== st.last + 1 && st.errors.length < 5) st.errors.push(`got ${k} after ${st.last}`);
        st.last = k;
        st.count++;
        if (st.count === 5) c.io.engine._probe("websocket");
      });
      c.on("disconnect", () => st.disconnects++);
      c.io.engine.once("upgrade", () => { st.atUpgrade = st.count; });
      await new Promise((resolve, reject) => {
        c.once("connect_error", reject);
        c.once("connect", () => c.timeout(10_000).emit("join", "fan-up", (err, r) => {
          if (err || r?.ok !== true) return reject(new Error(`join: ${err?.message ?? JSON.stringify(r)}`));
          st.joinedAt = published;
          resolve();
        }));
      });
    }));
    await stream;
    await waitFor(() => members.every((m) => m.last >= MESSAGES), { timeout: 4 * SAFETY_NET, interval: 50, what: "the last message at every client" })
      .finally(() => s.note(`stream of ${MESSAGES} took ${Date.now() - t0} ms; clients at the end: ${members.filter((m) => m.last >= MESSAGES).length} of ${members.length}`));
    await sleep(300);
    for (const m of members) await upgraded(m.c);
    const midStream = members.filter((m) => m.atUpgrade > 0 && m.atUpgrade < m.count).length;
    s.note(`${midStream} of ${members.length} clients upgraded after receiving some messages on polling; first messages ${Math.min(...members.map((m) => m.first))}..${Math.max(...members.map((m) => m.first))}`);
    for (const [i, m] of members.entries()) {
      assert.deepEqual(m.errors, [], `client ${i}: gap or duplicate`);
      assert.ok(m.first >= 1 && m.first <= m.joinedAt + 1, `client ${i}: first message ${m.first}, but publish ${m.joinedAt + 1} was sent after its join ack`);
      assert.equal(m.count, MESSAGES - m.first + 1, `client ${i}: count`);
      assert.equal(m.disconnects, 0, `client ${i} disconnected`);
    }
    await waitFor(() => acks.length === MESSAGES, { what: "all publish acks" });
    assert.ok(midStream > 0, "no client upgraded while messages were flowing: the scenario did not test what it should");
  });
});
