// Real socket.io-client 4.8 sockets with their own reconnection (randomised exponential
// backoff), each recording its timeline: connects (and whether the session was recovered),
// "ready" instants (connected and every room joined, or recovered), disconnects with reasons,
// failed connection attempts, and the hub events it received.
//
// A client that connects without recovery (re-)joins its rooms itself, as an app would in its
// `connect` handler; a recovered client relies on the server having restored its rooms.
import { io } from 'socket.io-client';
import { now, sleep, waitFor } from './clock.mjs';
import { emit } from './http.mjs';

/** socket.io-client options from harness options (names as in the CLI). */
export function ioOptions(o = {}) {
  return {
    forceNew: true,
    transports: o.transports || ['polling', 'websocket'],
    reconnection: true,
    reconnectionDelay: o.reconnectDelay ?? 1000,
    reconnectionDelayMax: o.reconnectDelayMax ?? 5000,
    randomizationFactor: o.randomization ?? 0.5,
    timeout: o.connectTimeout ?? 20000,
  };
}

function errorText(err) {
  const d = err && err.description;
  const parts = [err && err.message];
  if (d !== undefined && d !== null) {
    if (typeof d === 'number' || typeof d === 'string') parts.push(String(d));
    else if (d.message) parts.push(d.message);
    else if (d.error && d.error.message) parts.push(d.error.message);
  }
  return parts.filter(Boolean).join(': ');
}

export class Client {
  constructor(idx, url, { rooms = [], ioOpts, record = ['msg', 'probe'], joinTimeoutMs = 5000 } = {}) {
    this.idx = idx;
    this.rooms = rooms;
    this.record = new Set(record);
    this.joinTimeoutMs = joinTimeoutMs;
    this.connects = [];
    this.readies = [];
    this.disconnects = [];
    this.errorLog = [];
    this.joinErrors = 0;
    this.events = {};
    this.ready = false;
    this.generation = 0;
    this.socket = io(url, ioOpts);
    this.socket.on('connect', () => this._onConnect());
    this.socket.on('disconnect', (reason) => {
      this.ready = false;
      this.generation++;
      this.disconnects.push({ t: now(), reason });
    });
    this.socket.on('connect_error', (err) => {
      this.errorLog.push({ t: now(), error: errorText(err) });
    });
    this.socket.onAny((event, ...args) => {
      if (!this.record.has(event)) return;
      (this.events[event] ||= []).push(args[0]);
    });
  }

  async _onConnect() {
    const t = now();
    const gen = ++this.generation;
    const recovered = Boolean(this.socket.recovered);
    this.connects.push({ t, sid: this.socket.id, recovered });
    if (!recovered) {
      try {
        for (const room of this.rooms) {
          const ack = await this.socket.timeout(this.joinTimeoutMs).emitWithAck('join', room);
          if (!ack || ack.ok !== true) throw new Error(`join ${room}: ${JSON.stringify(ack)}`);
        }
      } catch (err) {
        if (gen === this.generation) {
          this.joinErrors++;
          this.lastJoinError = err.message;
        }
        return;
      }
    }
    if (gen !== this.generation) return; // disconnected meanwhile
    this.ready = true;
    this.readies.push(now());
  }

  received(event) {
    return this.events[event] || [];
  }

  toRecord() {
    return {
      idx: this.idx,
      rooms: this.rooms,
      connects: this.connects,
      readies: this.readies,
      disconnects: this.disconnects,
      errorLog: this.errorLog,
      joinErrors: this.joinErrors,
      lastJoinError: this.lastJoinError,
    };
  }

  close() {
    this.socket.removeAllListeners();
    this.socket.offAny();
    this.socket.disconnect();
  }
}

/** Status of probe `nonce` over clients: ok = every room of the client got it exactly once. */
export function probeStatus(clients, nonce) {
  let ok = 0;
  let dupes = 0;
  let wrong = 0;
  const missing = [];
  for (const c of clients) {
    const got = c.received('probe').filter((p) => p && p.nonce === nonce);
    const rooms = c.rooms.length ? c.rooms : ['*'];
    let fine = true;
    for (const room of rooms) {
      const n = got.filter((p) => p.room === room).length;
      if (n > 1) dupes++;
      if (n !== 1) fine = false;
    }
    wrong += got.filter((p) => !rooms.includes(p.room)).length;
    if (fine) ok++;
    else if (missing.length < 20) missing.push(c.idx);
  }
  return { total: clients.length, ok, dupes, wrong, missing };
}

let probeSeq = 0;

/**
 * Membership check: emits a `probe` via POST /api/v1/emit to each room (or to everyone when
 * rooms is empty), then waits until statusFn(nonce) shows every client got exactly its rooms'
 * probes, and a little longer to catch duplicates. Returns the final status.
 */
export async function probe(baseUrl, rooms, statusFn, { timeoutMs = 5000, settleMs = 150 } = {}) {
  const nonce = `${process.pid}-${++probeSeq}-${Math.random().toString(36).slice(2, 8)}`;
  const targets = rooms.length ? rooms : ['*'];
  for (const room of targets) {
    await emit(baseUrl, { rooms: room === '*' ? [] : [room], event: 'probe', data: { nonce, room } });
  }
  const done = await waitFor(async () => {
    const s = await statusFn(nonce);
    return s.ok === s.total ? s : null;
  }, { timeoutMs, stepMs: 50 });
  if (done) await sleep(settleMs);
  return { nonce, ...(await statusFn(nonce)) };
}

/** Rooms of client i when `roomCount` rooms are shared round-robin. */
function roomsFor(i, roomCount, prefix = 'room') {
  return roomCount > 0 ? [`${prefix}-${i % roomCount}`] : [];
}

/** A set of in-process clients. */
export class Fleet {
  constructor({ url, count, roomCount = 0, roomPrefix = 'room', idBase = 0, ioOpts, record } = {}) {
    this.url = url;
    this.count = count;
    this.roomCount = roomCount;
    this.roomPrefix = roomPrefix;
    this.idBase = idBase;
    this.ioOpts = ioOpts || ioOptions();
    this.record = record;
    this.clients = [];
  }

  get rooms() {
    const n = Math.min(this.roomCount, this.count);
    return Array.from({ length: n }, (_, i) => `${this.roomPrefix}-${i}`);
  }

  /** Creates the clients in batches (batch per stepMs) and waits until all are ready. */
  async connect({ timeoutMs = 30000, batch = 100, stepMs = 20, onTick } = {}) {
    for (let i = 0; i < this.count; i += batch) {
      for (let j = i; j < Math.min(this.count, i + batch); j++) {
        const idx = this.idBase + j;
        this.clients.push(new Client(idx, this.url, {
          rooms: roomsFor(j, this.roomCount, this.roomPrefix),
          ioOpts: this.ioOpts,
          record: this.record,
        }));
      }
      if (i + batch < this.count) await sleep(stepMs);
    }
    return this.waitReady({ timeoutMs, onTick });
  }

  readyCount() {
    return this.clients.filter((c) => c.ready).length;
  }

  /** Waits until every client is ready; returns true when they all are. */
  async waitReady({ timeoutMs = 30000, onTick } = {}) {
    return Boolean(await waitFor(() => this.readyCount() === this.clients.length, { timeoutMs, stepMs: 50, onTick }));
  }

  /** Waits until every client disconnected at or after t0 is ready again after that disconnect. */
  async waitBack(t0, { timeoutMs = 30000, onTick } = {}) {
    return Boolean(await waitFor(() => this.countBackSince(t0) === this.clients.length, { timeoutMs, stepMs: 50, onTick }));
  }

  countDisconnectedSince(t0) {
    return this.clients.filter((c) => c.disconnects.some((x) => x.t >= t0)).length;
  }

  countBackSince(t0) {
    return this.clients.filter((c) => {
      const d = c.disconnects.find((x) => x.t >= t0);
      return d && c.ready && c.readies.some((t) => t > d.t);
    }).length;
  }

  probeStatus(nonce) {
    return probeStatus(this.clients, nonce);
  }

  probe(baseUrl, opts) {
    return probe(baseUrl, this.rooms, (n) => this.probeStatus(n), opts);
  }

  records() {
    return this.clients.map((c) => c.toRecord());
  }

  close() {
    for (const c of this.clients) c.close();
    this.clients = [];
  }
}
