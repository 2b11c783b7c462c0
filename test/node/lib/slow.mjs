// Helpers for the backpressure suite: Prometheus scraping, the server's RSS,
// a raw Engine.IO client that joins a room and then stops reading, and a
// fleet of socket.io-client sockets running in worker threads.
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { request } from "./raw.mjs";
import { within } from "./harness.mjs";

/** Fetches /metrics and parses it into [{name, labels, value}]. */
export async function scrape(srv) {
  const res = await request(`${srv.url}/metrics`, { timeout: 10_000 });
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  const samples = [];
  for (const line of res.text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const [, k, v] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when none). */
export function metric(samples, name, labels = {}) {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/** The samples named `name` as "labels=value" lines, for messages. */
export function show(samples, name) {
  return samples.filter((s) => s.name === name).map((s) => `${JSON.stringify(s.labels)}=${s.value}`).join(" ") || "(none)";
}

/** Resident set size of process `pid`, in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export const MiB = 1024 * 1024;
export const mib = (b) => `${(b / MiB).toFixed(1)} MiB`;

/**
 * Opens a raw Engine.IO WebSocket through the scope `s`, connects to "/",
 * joins `room` and stops reading (ws.pause(): the socket stays paused even
 * when ws's receiver drains). The OS default receive buffer is kept (128 KB
 * here, above the loopback MSS), so the client can read its close frame
 * after resume(). Returns the RawWs.
 */
export async function stalledClient(s, srv, room) {
  const raw = await s.rawWs(srv);
  await raw.handshake();
  const connect = await raw.connect("/");
  if (!connect.startsWith("40{")) throw new Error(`stalled client: CONNECT answered ${connect}`);
  raw.send(`421["join",${JSON.stringify(room)}]`);
  await raw.next((m) => m === '431[{"ok":true}]');
  raw.ws.pause();
  return raw;
}

/** Decodes the event packets ("42[...]") a raw client read, in order, skipping others. */
export function rawEvents(raw, event) {
  const out = [];
  for (const m of raw.queue) {
    if (typeof m !== "string" || !m.startsWith("42[")) continue;
    const [name, data] = JSON.parse(m.slice(2));
    if (name === event) out.push(data);
  }
  return out;
}

/**
 * `total` socket.io-client sockets (websocket transport) spread over
 * `workers` worker threads, each joined to `room` and checking that `event`
 * carries {seq} = 1, 2, 3, ... exactly once in order. Progress (messages
 * received per client) is shared memory, so the publisher can pace itself
 * on the slowest client without messages between threads.
 */
export class Fleet {
  static async start(s, url, { total, workers = 2, room, event, timeout = 60_000 }) {
    const counts = new Int32Array(new SharedArrayBuffer(4 * total));
    const fleet = new Fleet(counts);
    const per = Math.ceil(total / workers);
    for (let w = 0, base = 0; base < total; w++, base += per) {
      const worker = new Worker(new URL("./fleet-worker.mjs", import.meta.url), {
        workerData: { url, base, n: Math.min(per, total - base), room, event, counts: counts.buffer },
      });
      s.defer(() => fleet.close(worker));
      fleet.workers.push(worker);
    }
    await within(timeout, Promise.all(fleet.workers.map((w) => fleet.call(w, { type: "ready" }))), `${total} clients connected and joined`);
    return fleet;
  }

  constructor(counts) {
    this.counts = counts;
    this.workers = [];
    this.seq = 0;
  }

  /** Sends `msg` to `worker` and resolves with its answer (rejects on a worker error). */
  call(worker, msg) {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const onMsg = (m) => {
        if (m.id !== id) return;
        off();
        if (m.error) reject(new Error(m.error));
        else resolve(m.result);
      };
      const onErr = (e) => { off(); reject(e); };
      const onExit = (code) => { off(); reject(new Error(`fleet worker exited (code ${code})`)); };
      const off = () => { worker.off("message", onMsg); worker.off("error", onErr); worker.off("exit", onExit); };
      worker.on("message", onMsg);
      worker.once("error", onErr);
      worker.once("exit", onExit);
      worker.postMessage({ ...msg, id });
    });
  }

  /** Fewest messages any client has received. */
  min() {
    let m = Infinity;
    for (let i = 0; i < this.counts.length; i++) {
      const c = Atomics.load(this.counts, i);
      if (c < m) m = c;
    }
    return m;
  }

  total() {
    let t = 0;
    for (let i = 0; i < this.counts.length; i++) t += Atomics.load(this.counts, i);
    return t;
  }

  /** Per worker: {clients, complete (count === expected), bad: [first few problems]}. */
  async report(expected) {
    const parts = await Promise.all(this.workers.map((w) => this.call(w, { type: "report", expected })));
    return {
      clients: parts.reduce((a, p) => a + p.clients, 0),
      complete: parts.reduce((a, p) => a + p.complete, 0),
      bad: parts.flatMap((p) => p.bad).slice(0, 10),
    };
  }

  /** Every client does an `echo` round trip; resolves with the number that got their value back. */
  async echo() {
    const parts = await Promise.all(this.workers.map((w) => this.call(w, { type: "echo" })));
    return { ok: parts.reduce((a, p) => a + p.ok, 0), errors: parts.flatMap((p) => p.errors).slice(0, 5) };
  }

  async close(worker) {
    try { await within(5000, this.call(worker, { type: "close" }), "fleet worker close"); } catch { /* terminated below */ }
    await worker.terminate();
  }
}

/** CPU time (user + system) process `pid` has used, in seconds. */
export function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}
