// BACKPRESSURE: a client that stops reading must cost the server a bounded
// amount of memory and must not slow down or hurt anyone else. Each outbound
// packet goes through one bounded per-connection queue; when it is full the
// policy decides (disconnect / drop-oldest / coalesce), and a write that
// blocks longer than --write-timeout closes the connection.
//
// The stalled clients are raw Engine.IO WebSockets that join a room and then
// stop reading (ws.pause()); they keep the OS default receive buffer (128 KB,
// above the loopback MSS, so their window reopens when they resume).
import { describe } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { scenario, waitFor, sleep, ack, SAFETY_NET } from "./lib/harness.mjs";
import { apiEmit } from "./lib/raw.mjs";
import { scrape, metric, show, rssBytes, cpuSeconds, mib, MiB, stalledClient, rawEvents, Fleet } from "./lib/slow.mjs";

const NSP = { namespace: "/" };

/** A keep-alive agent with one connection: sequential emits over it arrive in order. */
function emitter(s, srv) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  s.defer(() => agent.destroy());
  return async (payload) => {
    const res = await apiEmit(srv, payload, { agent });
    if (res.status !== 200) throw new Error(`emit: HTTP ${res.status} ${res.text}`);
  };
}

/** Waits until the open connections and the sockets of "/" are both `n`; returns the samples. */
async function settledAt(srv, n, what) {
  let last;
  try {
    await waitFor(async () => {
      last = await scrape(srv);
      return metric(last, "roomcast_connections_open") === n && metric(last, "roomcast_sockets_connected", NSP) === n;
    }, { interval: 100, what });
  } catch (e) {
    e.message += `; roomcast_connections_open=${metric(last, "roomcast_connections_open")}, ` +
      `roomcast_sockets_connected: ${show(last, "roomcast_sockets_connected")}`;
    throw e;
  }
  return last;
}

/** The seq numbers are strictly increasing, starting at 1 with no gap (a prefix of the stream). */
function assertPrefix(seqs, what) {
  for (let i = 0; i < seqs.length; i++) {
    if (seqs[i] !== i + 1) assert.fail(`${what}: message ${i} has seq ${seqs[i]}, expected ${i + 1} (a gap, duplicate or reordering)`);
  }
}

/**
 * `n` socket.io clients (websocket) joined to `room`, each checking that
 * `event` carries {seq} = 1, 2, 3, ... exactly once and in order.
 */
async function watchers(s, srv, n, room, event) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await s.client(srv.url, { transports: ["websocket"] });
    const st = { c, count: 0, next: 1, problems: [], disconnects: [] };
    c.on(event, (d) => {
      if (d?.seq !== st.next && st.problems.length < 3) st.problems.push(`got seq ${d?.seq} after ${st.next - 1}`);
      st.next = d?.seq + 1;
      st.count++;
    });
    c.on("disconnect", (r) => st.disconnects.push(r));
    assert.deepEqual(await ack(c, "join", room), { ok: true });
    out.push(st);
  }
  return out;
}

const slowest = (ws) => Math.min(...ws.map((w) => w.count));

/**
 * How long the slowest receiver may go without a single new message before
 * a wait for it fails: a lost message or a cut client never advances again,
 * a loaded machine only advances slowly. Throughput is for the benchmarks.
 */
const STALL_MS = 60_000;

/** Waits until get() >= target; fails only when get() stops advancing for STALL_MS. */
async function progress(get, target, what) {
  let last = get();
  let since = Date.now();
  for (let v = last; v < target; v = get()) {
    if (v > last) [last, since] = [v, Date.now()];
    else if (Date.now() - since > STALL_MS) assert.fail(`${what}: stuck at ${v} of ${target} for ${STALL_MS} ms`);
    await sleep(2);
  }
}

/** Every watcher got exactly seq 1..n in order and is still connected. */
async function assertWatchersGot(ws, n) {
  await progress(() => slowest(ws), n, `every watcher at message ${n}`);
  await sleep(200); // duplicates would show up here
  for (const [i, w] of ws.entries()) {
    assert.deepEqual(w.problems, [], `watcher ${i}: out of order, gap or duplicate`);
    assert.equal(w.count, n, `watcher ${i}: messages received`);
    assert.deepEqual(w.disconnects, [], `watcher ${i} disconnected`);
  }
}

/**
 * Emits payload(k) for k = 1..max over HTTP, one at a time (so in order),
 * never more than `window` ahead of the slowest watcher; every `every` emits
 * it asks `stop()` whether to end early. Returns how many it emitted.
 */
async function pacedEmits({ emit, max, window, ws, payload, stop = async () => false, every = 50 }) {
  for (let k = 1; k <= max; k++) {
    if (k - window > slowest(ws)) await progress(() => slowest(ws), k - window, `emit ${k}: the slowest watcher`);
    await emit(payload(k));
    if (k % every === 0 && (await stop())) return k;
  }
  return max;
}

/** The raw client answers an echo with ack id `id`: the connection still works end to end. */
async function rawEcho(raw, id, value) {
  raw.send(`42${id}${JSON.stringify(["echo", value])}`);
  const reply = await raw.next((m) => typeof m === "string" && m.startsWith(`43${id}[`));
  assert.deepEqual(JSON.parse(reply.slice(2 + String(id).length)), [value]);
}

describe("backpressure", () => {
  // 1. One stalled client among 500 normal ones, default policy (disconnect).
  // 10,000 messages: the stalled client is cut after ~4,300 (its socket
  // buffers, ~4 MB, and its 256 KB queue); 500 × 10,000 deliveries take a
  // minute or more on a loaded 2-core machine (20,000 missed an 80 s
  // deadline there). The scenario's timeout is a safety
  // net: a stall fails after STALL_MS without progress.
  scenario("a stalled client among 500 normal ones is cut off; the others get all 10,000 messages; RSS stays bounded",
    { timeout: 600_000 }, async (s) => {
      const CLIENTS = 500;
      const MESSAGES = 10_000;
      const QUEUE_BYTES = 262_144;
      const PAD = "x".repeat(1000); // each event frame is ~1,040 bytes: 42["m",{"seq":N,"pad":"xxx…"}]
      // The publisher keeps at most WINDOW messages ahead of the slowest normal
      // client. That is what makes a client "normal": WINDOW × ~1,040 bytes
      // = ~208 KB < QUEUE_BYTES, so a client that keeps up within the window can
      // never fill its queue, whatever the kernel buffers hold.
      const WINDOW = 200;

      // Recovery off: the recovery buffer would keep every message for 2 min,
      // which is retention by configuration, not queueing. Info logging: debug
      // logs a line per packet. The stalled client answers no ping either: with
      // the default ping timeout (25 s + 20 s) the heartbeat, not its queue,
      // cuts it off on a machine where the ~4,300 messages that fill its
      // buffers take longer than that. A ping timeout past the scenario's
      // own timeout leaves only the queue bound and the write timeout, which
      // is what this checks; the normal clients answer pings all the same.
      const srv = await s.server(["--log-level", "info", "--recovery-window", "0", "--send-queue-bytes", String(QUEUE_BYTES),
        "--ping-timeout", "15m"]);
      let t = Date.now();
      const fleet = await Fleet.start(s, srv.url, { total: CLIENTS, workers: 2, room: "r", event: "m", timeout: 4 * SAFETY_NET });
      s.note(`${CLIENTS} clients connected and joined in ${Date.now() - t} ms`);
      // The publisher is a socket.io client emitting `publish` without waiting
      // for acks: one connection, so the order is the emit order, and the
      // server can batch writes. (Sequential HTTP emits, one round trip each,
      // took twice as long here: every writer then finds one packet at a time.)
      const pub = await s.client(srv.url, { transports: ["websocket"] });
      const REMAINING = CLIENTS + 1; // normal clients + publisher
      await settledAt(srv, REMAINING, `${REMAINING} connections`);

      const stalled = await stalledClient(s, srv, "r");
      await settledAt(srv, REMAINING + 1, `${REMAINING + 1} connections`);

      // Bound on the server's resident memory during the run:
      //   baseline (RSS with all 502 connections open, before any message)
      // + 502 × QUEUE_BYTES: every connection's queue full of distinct bytes.
      //   In fact a broadcast is encoded once and shared by all recipients, so
      //   this over-covers the queues, and with them the batch a blocked
      //   writer holds (at most one queue's worth).
      // + 64 MiB: the Go runtime's slack: the GC lets the heap grow to twice
      //   the live heap before collecting (GOGC=100) and returns freed pages
      //   lazily; the garbage of 20,000 decoded publishes and their acks;
      //   goroutine stacks (a reader and a writer per connection, a few KiB each).
      // What it catches: per-recipient copies (10,000 × 1 KB × 500 = 5 GB) or
      // unbounded queues on every connection. A single unbounded queue would
      // hold at most ~10 MB here, under the bound: the close counters and the
      // point in the stream where the stalled client was cut cover that.
      const baseline = rssBytes(srv.proc.pid);
      const cpu0 = cpuSeconds(srv.proc.pid);
      const ALLOWANCE = 64 * MiB;
      const bound = baseline + (REMAINING + 1) * QUEUE_BYTES + ALLOWANCE;
      let maxRss = baseline;
      let samples = 0;
      let cutAt = 0; // messages published when the stalled client's close was first seen
      let published = 0;
      let scraping = false;
      const timer = setInterval(async () => {
        maxRss = Math.max(maxRss, rssBytes(srv.proc.pid));
        samples++;
        if (cutAt || scraping) return;
        scraping = true;
        try {
          const m = await scrape(srv);
          if (metric(m, "roomcast_slow_client_disconnects_total") >= 1) cutAt = published;
        } catch { /* the next sample retries */ } finally { scraping = false; }
      }, 200);
      s.defer(() => clearInterval(timer));

      const acks = { ok: 0, bad: [] };
      t = Date.now();
      for (let k = 1; k <= MESSAGES; k++) {
        if (k - WINDOW > fleet.min()) await progress(() => fleet.min(), k - WINDOW, `publishing ${k} of ${MESSAGES}: the slowest normal client`);
        pub.emit("publish", { room: "r", event: "m", data: { seq: k, pad: PAD } }, (r) => {
          if (r?.ok === true) acks.ok++;
          else if (acks.bad.length < 5) acks.bad.push(r);
        });
        published = k;
      }
      const publishMs = Date.now() - t;
      try {
        await progress(() => fleet.min(), MESSAGES, "every normal client at the last message");
      } finally {
        s.note(`published ${published} in ${publishMs} ms; delivered ${fleet.total()} of ${CLIENTS * MESSAGES} in ${Date.now() - t} ms; ` +
          `server CPU ${(cpuSeconds(srv.proc.pid) - cpu0).toFixed(1)} s`);
      }
      await sleep(300); // duplicates would show up here
      clearInterval(timer);
      maxRss = Math.max(maxRss, rssBytes(srv.proc.pid));

      // Every normal client got every message once, in order, and stayed connected.
      const report = await fleet.report(MESSAGES);
      assert.equal(report.clients, CLIENTS);
      assert.equal(report.complete, CLIENTS,
        `normal clients without exactly ${MESSAGES} in-order messages and no disconnect: ${JSON.stringify(report.bad)}`);
      await waitFor(() => acks.ok + acks.bad.length === MESSAGES, { what: "all publish acks" });
      assert.deepEqual(acks.bad, [], "publish acks other than {ok:true}");

      // Memory stayed bounded.
      s.note(`server RSS: baseline ${mib(baseline)}, max ${mib(maxRss)} over ${samples} samples, bound ${mib(bound)} ` +
        `(baseline + ${REMAINING + 1} × ${QUEUE_BYTES} B + ${mib(ALLOWANCE)})`);
      assert.ok(maxRss < bound, `server RSS reached ${mib(maxRss)}, bound ${mib(bound)}`);

      // The stalled client was closed as slow, mid-stream, and only it.
      const m = await settledAt(srv, REMAINING, `the stalled client gone, ${REMAINING} connections left`);
      s.note(`slow-client closes: ${show(m, "roomcast_slow_client_disconnects_total")}; connection closes: ${show(m, "roomcast_connection_closes_total")}; ` +
        `socket disconnects: ${show(m, "roomcast_socket_disconnects_total")}; cut after ${cutAt} of ${MESSAGES} published`);
      const closes = metric(m, "roomcast_connection_closes_total");
      assert.equal(closes, 1, `connection closes: ${show(m, "roomcast_connection_closes_total")}`);
      const reason = ["send queue full", "Send timeout"].find((r) => metric(m, "roomcast_connection_closes_total", { reason: r }) === 1);
      assert.ok(reason, `the one close should be "send queue full" or "Send timeout": ${show(m, "roomcast_connection_closes_total")}`);
      assert.equal(metric(m, "roomcast_socket_disconnects_total", { namespace: "/", reason }), 1,
        `socket disconnects: ${show(m, "roomcast_socket_disconnects_total")}`);
      assert.ok(metric(m, "roomcast_slow_client_disconnects_total", { reason }) >= 1,
        `slow-client closes: ${show(m, "roomcast_slow_client_disconnects_total")}`);
      assert.ok(cutAt > 0 && cutAt < MESSAGES, `the stalled client should be cut mid-stream, was first seen closed after ${cutAt} of ${MESSAGES}`);

      // The stalled client, once reading again, has an unbroken prefix of the stream and then the end.
      stalled.ws.resume();
      const closed = await stalled.waitClosed();
      const seqs = rawEvents(stalled, "m").map((d) => d.seq);
      s.note(`stalled client read ${seqs.length} messages after resuming, then close code ${closed.code} ${JSON.stringify(closed.reason)}`);
      assertPrefix(seqs, "stalled client");
      assert.ok(seqs.length < MESSAGES, "the stalled client got the whole stream: it was not cut off");

      // The server keeps serving everyone else.
      const echo = await fleet.echo();
      assert.equal(echo.ok, CLIENTS, `echo round trips: ${JSON.stringify(echo.errors)}`);
      assert.deepEqual(await ack(pub, "echo", "still there"), "still there");

    });

  // 2a. The queue bound: huge write timeout, small packet bound.
  scenario("queue bound: a stalled client is closed with 1008 \"send queue full\" after the data it was sent",
    { timeout: 300_000 }, async (s) => {
      const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
        "--write-timeout", "1h", "--send-queue-packets", "16"]);
      const ws = await watchers(s, srv, 1, "r", "n");
      const stalled = await stalledClient(s, srv, "r");
      const emit = emitter(s, srv);
      const PAD = "y".repeat(4000);
      let m;
      const t = Date.now();
      // The kernel buffers take a few MB before the server's writer blocks;
      // after that 16 more packets fill the queue.
      const sent = await pacedEmits({
        emit, max: 20_000, window: 8, ws, payload: (k) => ({ rooms: ["r"], event: "n", data: { seq: k, pad: PAD } }),
        stop: async () => { m = await scrape(srv); return metric(m, "roomcast_connection_closes_total", { reason: "send queue full" }) >= 1; },
      });
      s.note(`queue full after ${sent} emits of ~4 KB (${Date.now() - t} ms): ` +
        `closes ${show(m, "roomcast_connection_closes_total")}; slow-client closes ${show(m, "roomcast_slow_client_disconnects_total")}`);
      assert.equal(metric(m, "roomcast_connection_closes_total", { reason: "send queue full" }), 1, "the stalled client was not closed for a full queue");
      assert.ok(metric(m, "roomcast_slow_client_disconnects_total", { reason: "send queue full" }) >= 1);
      assert.equal(metric(m, "roomcast_socket_disconnects_total", { namespace: "/", reason: "send queue full" }), 1,
        `socket disconnects: ${show(m, "roomcast_socket_disconnects_total")}`);

      stalled.ws.resume();
      const closed = await stalled.waitClosed();
      const seqs = rawEvents(stalled, "n").map((d) => d.seq);
      s.note(`stalled client read ${seqs.length} messages, then close ${closed.code} ${JSON.stringify(closed.reason)}`);
      assert.equal(closed.code, 1008, `close code (reason ${JSON.stringify(closed.reason)})`);
      assert.equal(closed.reason, "send queue full");
      assertPrefix(seqs, "stalled client");
      assert.ok(seqs.length > 0 && seqs.length < sent, `stalled client read ${seqs.length} of ${sent}`);

      await assertWatchersGot(ws, sent);
      await settledAt(srv, 1, "only the watcher left");
      assert.equal(await ack(ws[0].c, "echo", 42), 42);
    });

  // 2b. The write timeout: queue bounds out of reach, 500 ms write timeout.
  scenario("write timeout: a stalled client is closed with 1008 \"Send timeout\"", { timeout: 300_000 }, async (s) => {
    const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
      "--write-timeout", "500ms", "--send-queue-bytes", "1000000000", "--send-queue-packets", "1000000"]);
    const ws = await watchers(s, srv, 1, "r", "n");
    const stalled = await stalledClient(s, srv, "r");
    const emit = emitter(s, srv);
    const PAD = "y".repeat(4000);
    // The close frame must go out within the write timeout too, after what the
    // kernel holds: resume reading as soon as the server has given up.
    let timedOutAt = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const m = await scrape(srv);
        if (metric(m, "roomcast_slow_client_disconnects_total", { reason: "Send timeout" }) >= 1) {
          stalled.ws.resume();
          timedOutAt = Date.now();
          return;
        }
        await sleep(10);
      }
    })();
    s.defer(() => { polling = false; });
    const t = Date.now();
    const sent = await pacedEmits({
      emit, max: 20_000, window: 8, ws, every: 10, payload: (k) => ({ rooms: ["r"], event: "n", data: { seq: k, pad: PAD } }),
      stop: async () => timedOutAt > 0,
    });
    polling = false;
    await poller;
    s.note(`write timeout seen ${timedOutAt ? timedOutAt - t : "never"} ms after the first of ${sent} emits of ~4 KB`);
    assert.ok(timedOutAt > 0, `no "Send timeout" close after ${sent} emits`);

    const closed = await stalled.waitClosed();
    const seqs = rawEvents(stalled, "n").map((d) => d.seq);
    s.note(`stalled client read ${seqs.length} messages, then close ${closed.code} ${JSON.stringify(closed.reason)} ${closed.at - timedOutAt} ms after resuming`);
    // The close frame had the write timeout to get past what the kernel
    // holds: on a loaded machine the resumed reader may not drain that in
    // time, and the server then drops the connection without it (1006).
    // The reason itself is asserted on the server's counters below.
    if (closed.code !== 1006) {
      assert.equal(closed.code, 1008, `close code (reason ${JSON.stringify(closed.reason)})`);
      assert.equal(closed.reason, "Send timeout");
    }
    assertPrefix(seqs, "stalled client");

    const m = await settledAt(srv, 1, "only the watcher left");
    assert.equal(metric(m, "roomcast_connection_closes_total", { reason: "Send timeout" }), 1, `closes: ${show(m, "roomcast_connection_closes_total")}`);
    assert.equal(metric(m, "roomcast_socket_disconnects_total", { namespace: "/", reason: "Send timeout" }), 1,
      `socket disconnects: ${show(m, "roomcast_socket_disconnects_total")}`);
    await assertWatchersGot(ws, sent);
    assert.equal(await ack(ws[0].c, "echo", 43), 43);
  });

  // 3. coalesce: the latest value per key survives a stall.
  scenario("coalesce: a slow reader ends with the latest value of each of 100 keys, never going backwards", { timeout: 300_000 }, async (s) => {
    const KEYS = 100;
    const UPDATES = 10_000;
    const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
      "--send-queue-policy", "coalesce", "--send-queue-packets", "150", "--write-timeout", "1h"]);
    const ws = await watchers(s, srv, 1, "prices", "price");
    const slow = await stalledClient(s, srv, "prices");
    const emit = emitter(s, srv);
    // ~1 KB updates, so that 10,000 of them (~10 MB) are more than the kernel
    // buffers hold and the queue has to coalesce.
    const PAD = "p".repeat(1000);
    const keyOf = (seq) => `k${(seq - 1) % KEYS}`;
    const t = Date.now();
    // The watcher keeps up within 50 updates: its queue never holds two of a key.
    await pacedEmits({
      emit, max: UPDATES, window: 50, ws,
      payload: (k) => ({ rooms: ["prices"], event: "price", data: { key: keyOf(k), seq: k, pad: PAD }, coalesce: keyOf(k) }),
    });
    s.note(`${UPDATES} updates emitted in ${Date.now() - t} ms`);
    await assertWatchersGot(ws, UPDATES);

    slow.ws.resume();
    const latest = new Map();
    for (let k = UPDATES - KEYS + 1; k <= UPDATES; k++) latest.set(keyOf(k), k);
    const seen = () => rawEvents(slow, "price");
    await waitFor(() => seen().filter((d) => d.seq > UPDATES - KEYS).length >= KEYS,
      { interval: 50, what: "the slow reader at the latest value of every key" })
      .catch((e) => { e.message += ` (got ${seen().length} updates, the last ${JSON.stringify(seen().slice(-3).map((d) => d.seq))})`; throw e; });
    await sleep(200);
    const got = seen();
    const last = new Map();
    const backwards = [];
    for (const d of got) {
      const prev = last.get(d.key);
      if (prev !== undefined && d.seq <= prev && backwards.length < 5) backwards.push(`${d.key}: ${d.seq} after ${prev}`);
      last.set(d.key, d.seq);
    }
    const m = await scrape(srv);
    const coalesced = metric(m, "roomcast_send_coalesced_total");
    const dropped = metric(m, "roomcast_send_dropped_total", { policy: "coalesce" });
    s.note(`slow reader got ${got.length} of ${UPDATES} updates; coalesced ${coalesced}, dropped ${show(m, "roomcast_send_dropped_total")}`);
    assert.deepEqual(backwards, [], "a key's seq went backwards (or repeated)");
    assert.deepEqual(Object.fromEntries(last), Object.fromEntries(latest), "the last value of each key");
    assert.ok(coalesced > 0, "roomcast_send_coalesced_total is 0");
    assert.ok(got.length < UPDATES, "the slow reader got every update: nothing was coalesced for it");
    // Accounting: every update meant for the slow reader was delivered, replaced or dropped.
    assert.equal(got.length + coalesced + dropped, UPDATES,
      `delivered ${got.length} + coalesced ${coalesced} + dropped ${dropped} should be the ${UPDATES} updates`);

    // Coalescing is not a disconnect: the slow reader is a normal client again.
    await rawEcho(slow, 5, "after the stall");
    const after = await settledAt(srv, 2, "watcher and slow reader connected");
    assert.equal(metric(after, "roomcast_connection_closes_total"), 0, `closes: ${show(after, "roomcast_connection_closes_total")}`);
  });

  // 3b. coalesce only when full (README: "a full queue replaces the queued packet with the same key").
  scenario("coalesce: a queue that is not full keeps both updates of a key", { timeout: 300_000 }, async (s) => {
    const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
      "--send-queue-policy", "coalesce", "--send-queue-packets", "150", "--send-queue-bytes", "1048576", "--write-timeout", "1h"]);
    const slow = await stalledClient(s, srv, "prices");
    const emit = emitter(s, srv);
    // Block the writer: 8 MB of 256 KB fillers, more than the kernel buffers
    // take; the fillers that do not fit are dropped (no key: drop-oldest).
    // The queue then holds at most 3 fillers (3 × ~256 KB < 1 MiB), and two
    // ~40-byte updates keep it under both bounds (5 of 150 packets): the
    // second update arrives at a queue that is not full.
    const FILL = "f".repeat(256 * 1024);
    for (let i = 1; i <= 32; i++) await emit({ rooms: ["prices"], event: "fill", data: { i, pad: FILL } });
    await sleep(100);
    const before = metric(await scrape(srv), "roomcast_send_coalesced_total");
    await emit({ rooms: ["prices"], event: "price", data: { key: "A", seq: 1 }, coalesce: "A" });
    await emit({ rooms: ["prices"], event: "price", data: { key: "A", seq: 2 }, coalesce: "A" });
    const coalesced = metric(await scrape(srv), "roomcast_send_coalesced_total") - before;
    slow.ws.resume();
    await waitFor(() => rawEvents(slow, "price").some((d) => d.seq === 2), { what: "update 2 at the slow reader" });
    await sleep(200);
    const got = rawEvents(slow, "price").map((d) => d.seq);
    const fills = rawEvents(slow, "fill").map((d) => d.i);
    s.note(`slow reader got fillers ${fills.length ? `${fills[0]}..${fills.at(-1)} (${fills.length})` : "none"}, updates ${JSON.stringify(got)}; coalesced ${coalesced}`);
    assert.ok(fills.length < 32, "the writer never blocked (every filler arrived): the scenario did not test a stalled queue");
    assert.deepEqual(got, [1, 2], `both updates of key A should arrive: the queue was not full (coalesced ${coalesced})`);
  });

  // 4. drop-oldest: gaps, but in order and ending with the newest.
  scenario("drop-oldest: a slow reader's sequence increases, has gaps and ends with the newest message", { timeout: 300_000 }, async (s) => {
    const MESSAGES = 8000;
    const PACKETS = 64;
    const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
      "--send-queue-policy", "drop-oldest", "--send-queue-packets", String(PACKETS), "--write-timeout", "1h"]);
    const ws = await watchers(s, srv, 1, "r", "n");
    const slow = await stalledClient(s, srv, "r");
    const emit = emitter(s, srv);
    const PAD = "d".repeat(1000); // 8,000 × ~1 KB: more than the kernel buffers hold
    const t = Date.now();
    await pacedEmits({ emit, max: MESSAGES, window: PACKETS / 2, ws, payload: (k) => ({ rooms: ["r"], event: "n", data: { seq: k, pad: PAD } }) });
    s.note(`${MESSAGES} emitted in ${Date.now() - t} ms`);
    await assertWatchersGot(ws, MESSAGES);

    slow.ws.resume();
    await waitFor(() => rawEvents(slow, "n").some((d) => d.seq === MESSAGES), { interval: 50, what: "the newest message at the slow reader" })
      .catch((e) => { e.message += ` (the last it got: ${JSON.stringify(rawEvents(slow, "n").slice(-3).map((d) => d.seq))})`; throw e; });
    await sleep(200);
    const seqs = rawEvents(slow, "n").map((d) => d.seq);
    let gaps = 0;
    for (let i = 1; i < seqs.length; i++) {
      if (seqs[i] <= seqs[i - 1]) assert.fail(`slow reader: seq ${seqs[i]} after ${seqs[i - 1]} (position ${i})`);
      if (seqs[i] > seqs[i - 1] + 1) gaps++;
    }
    let tail = 1;
    while (tail < seqs.length && seqs.at(-tail - 1) === seqs.at(-tail) - 1) tail++;
    const m = await scrape(srv);
    const dropped = metric(m, "roomcast_send_dropped_total", { policy: "drop-oldest" });
    s.note(`slow reader got ${seqs.length} of ${MESSAGES} with ${gaps} gaps, the last ${tail} contiguous up to ${seqs.at(-1)}; dropped ${show(m, "roomcast_send_dropped_total")}`);
    assert.equal(seqs.at(-1), MESSAGES, "the slow reader's last message is not the newest");
    assert.ok(gaps > 0 && seqs.length < MESSAGES, "no gaps: nothing was dropped for the slow reader");
    assert.ok(dropped > 0, "roomcast_send_dropped_total{policy=\"drop-oldest\"} is 0");
    assert.equal(seqs.length + dropped, MESSAGES, `delivered ${seqs.length} + dropped ${dropped} should be the ${MESSAGES} messages`);

    await rawEcho(slow, 7, "after the stall");
    const after = await settledAt(srv, 2, "watcher and slow reader connected");
    assert.equal(metric(after, "roomcast_connection_closes_total"), 0, `closes: ${show(after, "roomcast_connection_closes_total")}`);
  });

  // 5. After several slow clients are cut: the gauges, the counters, the service.
  scenario("after 5 stalled clients are cut, the gauges count the 20 left, each close is counted once, and the server serves",
    { timeout: 300_000 }, async (s) => {
      const STALLED = 5;
      const NORMAL = 20;
      const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
        "--write-timeout", "1h", "--send-queue-packets", "32"]);
      const ws = await watchers(s, srv, NORMAL, "r", "n");
      const stalled = [];
      for (let i = 0; i < STALLED; i++) stalled.push(await stalledClient(s, srv, "r"));
      await settledAt(srv, NORMAL + STALLED, "all connected");
      const emit = emitter(s, srv);
      const PAD = "z".repeat(4000);
      let m;
      const sent = await pacedEmits({
        emit, max: 20_000, window: 16, ws, payload: (k) => ({ rooms: ["r"], event: "n", data: { seq: k, pad: PAD } }),
        stop: async () => { m = await scrape(srv); return metric(m, "roomcast_connection_closes_total") >= STALLED; },
      });
      s.note(`${STALLED} closes after ${sent} emits`);
      await assertWatchersGot(ws, sent);

      m = await settledAt(srv, NORMAL, `${NORMAL} connections left`);
      s.note(`closes ${show(m, "roomcast_connection_closes_total")}; slow-client closes ${show(m, "roomcast_slow_client_disconnects_total")}; ` +
        `socket disconnects ${show(m, "roomcast_socket_disconnects_total")}`);
      assert.equal(metric(m, "roomcast_connection_closes_total", { reason: "send queue full" }), STALLED, `closes: ${show(m, "roomcast_connection_closes_total")}`);
      assert.equal(metric(m, "roomcast_socket_disconnects_total", { namespace: "/", reason: "send queue full" }), STALLED,
        `socket disconnects: ${show(m, "roomcast_socket_disconnects_total")}`);

      for (const [i, raw] of stalled.entries()) {
        raw.ws.resume();
        const closed = await raw.waitClosed();
        assert.deepEqual([closed.code, closed.reason], [1008, "send queue full"], `stalled client ${i}: close`);
        assertPrefix(rawEvents(raw, "n").map((d) => d.seq), `stalled client ${i}`);
      }

      // Everyone left is served, and a newcomer too.
      const echoes = await Promise.all(ws.map((w, i) => ack(w.c, "echo", { i })));
      assert.deepEqual(echoes, ws.map((_, i) => ({ i })));
      const late = await s.client(srv.url, { transports: ["websocket"] });
      assert.equal(await ack(late, "echo", "new"), "new");
      late.disconnect();
      await settledAt(srv, NORMAL, `${NORMAL} connections after the newcomer left`);

      // "Connections closed for being slow": one per closed connection.
      const fin = await scrape(srv);
      assert.equal(metric(fin, "roomcast_slow_client_disconnects_total"), STALLED,
        `roomcast_slow_client_disconnects_total counts ${metric(fin, "roomcast_slow_client_disconnects_total")} ` +
        `(${show(fin, "roomcast_slow_client_disconnects_total")}) for ${STALLED} connections closed as slow ` +
        `(roomcast_connection_closes_total: ${show(fin, "roomcast_connection_closes_total")})`);
    });

  // 6. The slow-client counter counts connections, not events on the way to their close.
  scenario("slow-client counter: a connection closed for a full queue is not counted again when its blocked write times out",
    { timeout: 300_000 }, async (s) => {
      const STALLED = 3;
      const srv = await s.server(["--log-level", "info", "--recovery-window", "0",
        "--write-timeout", "1s", "--send-queue-packets", "32"]);
      const ws = await watchers(s, srv, 2, "r", "n");
      for (let i = 0; i < STALLED; i++) await stalledClient(s, srv, "r");
      const emit = emitter(s, srv);
      const PAD = "z".repeat(4000);
      const sent = await pacedEmits({
        emit, max: 20_000, window: 16, ws, payload: (k) => ({ rooms: ["r"], event: "n", data: { seq: k, pad: PAD } }),
        stop: async () => metric(await scrape(srv), "roomcast_connection_closes_total") >= STALLED,
      });
      // The stalled clients never read again: their writers, blocked since
      // before the queue filled, hit the 1 s write timeout after the close.
      await sleep(2500);
      const m = await settledAt(srv, 2, "the watchers left");
      s.note(`after ${sent} emits: closes ${show(m, "roomcast_connection_closes_total")}; ` +
        `slow-client closes ${show(m, "roomcast_slow_client_disconnects_total")}`);
      await assertWatchersGot(ws, sent);
      assert.equal(metric(m, "roomcast_connection_closes_total"), STALLED, `closes: ${show(m, "roomcast_connection_closes_total")}`);
      for (const reason of ["send queue full", "Send timeout"]) {
        assert.equal(metric(m, "roomcast_slow_client_disconnects_total", { reason }), metric(m, "roomcast_connection_closes_total", { reason }),
          `roomcast_slow_client_disconnects_total{reason="${reason}"} ("Connections closed for being slow") should equal the connections ` +
          `closed for that reason: slow-client closes ${show(m, "roomcast_slow_client_disconnects_total")}, ` +
          `connection closes ${show(m, "roomcast_connection_closes_total")}`);
      }
    });
});
