// Clients spread over forked processes (storm-worker.mjs), seen by the parent as one fleet:
// progress counts arrive every 200 ms; records and probe checks are asked for over IPC.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { now, sleep, waitFor } from './clock.mjs';
import { probe } from './fleet.mjs';
import { track } from './spawn.mjs';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'storm-worker.mjs');
let reqSeq = 0;

export class WorkerFleet {
  constructor({ url, count, workers, roomCount, roomPrefix = 'storm', ioOpts }) {
    this.url = url;
    this.count = count;
    this.nWorkers = Math.min(workers, count);
    this.roomCount = roomCount;
    this.roomPrefix = roomPrefix;
    this.ioOpts = ioOpts;
    this.workers = [];
  }

  get rooms() {
    return Array.from({ length: Math.min(this.roomCount, this.count) }, (_, i) => `${this.roomPrefix}-${i}`);
  }

  async start({ timeoutMs }) {
    const per = Math.floor(this.count / this.nWorkers);
    let base = 0;
    for (let i = 0; i < this.nWorkers; i++) {
      const count = i === this.nWorkers - 1 ? this.count - base : per;
      const child = track(fork(WORKER, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
      const w = { child, count, progress: { total: 0, ready: 0, disconnected: 0, back: 0 }, pending: new Map(), exited: false };
      child.on('message', (m) => {
        if (m.type === 'progress') w.progress = m;
        else if (m.id && w.pending.has(m.id)) {
          w.pending.get(m.id)(m);
          w.pending.delete(m.id);
        }
      });
      w.exit = new Promise((resolve) => child.on('exit', () => {
        w.exited = true;
        for (const r of w.pending.values()) r(null);
        resolve();
      }));
      await new Promise((resolve) => child.once('message', resolve)); // hello
      child.send({
        type: 'start',
        timeoutMs,
        fleet: { url: this.url, count, roomCount: this.roomCount, roomPrefix: this.roomPrefix, idBase: base, ioOpts: this.ioOpts },
      });
      this.workers.push(w);
      base += count;
    }
  }

  _ask(w, msg, timeoutMs = 10000) {
    if (w.exited) return Promise.resolve(null);
    const id = ++reqSeq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        w.pending.delete(id);
        resolve(null);
      }, timeoutMs);
      w.pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      w.child.send({ ...msg, id });
    });
  }

  sum(key) {
    return this.workers.reduce((n, w) => n + (w.progress[key] || 0), 0);
  }

  readyCount() {
    return this.sum('ready');
  }

  async waitReady({ timeoutMs, onTick }) {
    return Boolean(await waitFor(() => this.sum('ready') === this.count, { timeoutMs, stepMs: 100, onTick }));
  }

  mark(t0) {
    for (const w of this.workers) w.child.send({ type: 'mark', t0 });
  }

  async waitBack({ timeoutMs, onTick }) {
    const ok = await waitFor(() => this.sum('back') === this.count, { timeoutMs, stepMs: 100, onTick });
    return Boolean(ok);
  }

  async records() {
    const parts = await Promise.all(this.workers.map((w) => this._ask(w, { type: 'records' }, 30000)));
    return parts.flatMap((p) => (p ? p.records : []));
  }

  async probeStatus(nonce) {
    const parts = await Promise.all(this.workers.map((w) => this._ask(w, { type: 'probeStatus', nonce })));
    const s = { total: this.count, ok: 0, dupes: 0, wrong: 0, missing: [] };
    for (const p of parts) {
      if (!p) continue;
      s.ok += p.status.ok;
      s.dupes += p.status.dupes;
      s.wrong += p.status.wrong;
      s.missing.push(...p.status.missing);
    }
    return s;
  }

  probe(baseUrl, opts) {
    return probe(baseUrl, this.rooms, (n) => this.probeStatus(n), { timeoutMs: 10000, settleMs: 300, ...opts });
  }

  async close() {
    for (const w of this.workers) if (!w.exited) w.child.send({ type: 'stop' });
    const all = Promise.all(this.workers.map((w) => w.exit));
    const t = now();
    await Promise.race([all, sleep(5000)]);
    for (const w of this.workers) if (!w.exited) w.child.kill('SIGKILL');
    await Promise.race([all, sleep(2000)]);
    this.closeMs = now() - t;
  }
}
