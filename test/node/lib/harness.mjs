// Test scaffolding: `scenario` wraps node:test's `it` with a hard timeout, a
// scope that closes every client and stops every server it started, and a dump
// of the server logs when the scenario fails.
import { it, before, after } from "node:test";
import { io as ioClient, Manager } from "socket.io-client";
import { startServer, TARGET } from "./server.mjs";
import { RawWs, SAFETY_NET } from "./raw.mjs";

export { SAFETY_NET };

export { TARGET };

/** The three client transport setups. */
export const TRANSPORTS = [
  { name: "websocket", opts: { transports: ["websocket"] } },
  { name: "polling", opts: { transports: ["polling"] } },
  { name: "upgrade", opts: {} }, // polling first, then upgrade to websocket
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `interval` ms until it is truthy or `timeout` ms pass. */
export async function waitFor(cond, { timeout = SAFETY_NET, interval = 10, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** Rejects with a clear message when `p` does not settle within `ms`. */
export function within(ms, p, what = "operation") {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no result within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

const watched = new Set(); // servers shared by a whole file (useServer)

/**
 * Starts one server for the enclosing describe block (or file) with `args`.
 * Returns a getter: `const srv = useServer([...]); srv().url`.
 */
export function useServer(args = [], opts = {}) {
  let srv;
  before(async () => { srv = await startServer(args, opts); watched.add(srv); });
  after(async () => { if (srv) { watched.delete(srv); await srv.stop(); } });
  return () => srv;
}

/** Prints the log lines each server wrote since `marks` (Map server → mark; 0 when absent). */
function dumpLogs(servers, marks, err) {
  for (const srv of servers) {
    const exit = srv.exitInfo ? ` (exited: code ${srv.exitInfo.code}, signal ${srv.exitInfo.signal})` : "";
    process.stderr.write(
      `\n----- server log during this scenario, TARGET=${TARGET}${exit}: ${srv.cmdline}\n` +
      `${srv.since(marks.get(srv) ?? 0)}\n----- end of server log -----\n`,
    );
  }
  process.stderr.write(`scenario failed: ${err?.stack ?? err}\n`);
}

class Scope {
  constructor(t) {
    this.t = t;
    this.servers = [];
    this.cleanups = [];
  }

  note(msg) { this.t.diagnostic(msg); }

  defer(fn) { this.cleanups.push(fn); }

  /** A server of its own for this scenario. */
  async server(args = [], opts = {}) {
    const srv = await startServer(args, opts);
    this.servers.push(srv);
    this.defer(() => srv.stop());
    return srv;
  }

  /** A socket.io-client socket (own Manager, no reconnection unless asked), not yet awaited. */
  socket(url, opts = {}) {
    const socket = ioClient(url, { forceNew: true, reconnection: false, timeout: SAFETY_NET, ...opts });
    this.defer(() => { socket.disconnect(); socket.io.engine?.close(); });
    return socket;
  }

  /** Connects a socket.io client to `url` (may include a namespace) and waits for `connect`. */
  async client(url, opts = {}, { timeout = SAFETY_NET } = {}) {
    const socket = this.socket(url, opts);
    await connected(socket, timeout);
    return socket;
  }

  /** A Manager for several namespaces over one connection. */
  manager(url, opts = {}) {
    const m = new Manager(url, { reconnection: false, timeout: SAFETY_NET, ...opts });
    this.defer(() => { m.engine?.close(); m._close?.(); });
    return m;
  }

  /** Connects and expects `connect_error`; resolves to that error. */
  async connectError(url, opts = {}, { timeout = SAFETY_NET + 10_000 } = {}) {
    const socket = this.socket(url, opts);
    return within(timeout, new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error(`expected connect_error, but ${url} connected`)));
      socket.once("connect_error", resolve);
    }), `connect_error on ${url}`);
  }

  /** A raw Engine.IO WebSocket connection (see raw.mjs). */
  async rawWs(srv, opts = {}) {
    const ws = await RawWs.open(srv.addr, opts);
    this.defer(() => ws.terminate());
    return ws;
  }

  async close() {
    for (const fn of this.cleanups.reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
  }
}

/** Resolves on `connect`, rejects on `connect_error` or after `timeout` ms. */
export function connected(socket, timeout = SAFETY_NET) {
  if (socket.connected) return Promise.resolve(socket);
  return within(timeout, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => reject(new Error(`connect_error: ${e.message}`)));
  }), "socket.io connect");
}

/**
 * A test with a scope and a hard timeout (default 20 s). On failure the logs
 * of this scenario's servers and of the file's shared servers are printed.
 */
export function scenario(name, opts, fn) {
  if (typeof opts === "function") [fn, opts] = [opts, {}];
  const timeout = opts.timeout ?? 4 * SAFETY_NET;
  return it(name, { ...opts, timeout: timeout + 10_000 }, async (t) => {
    const scope = new Scope(t);
    const marks = new Map([...watched].map((srv) => [srv, srv.mark()]));
    let timer;
    try {
      await Promise.race([
        fn(scope, t),
        new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`scenario timed out after ${timeout} ms`)), timeout); }),
      ]);
    } catch (e) {
      dumpLogs([...scope.servers, ...watched], marks, e);
      throw e;
    } finally {
      clearTimeout(timer);
      await scope.close();
    }
  });
}

/** emitWithAck with a timeout. */
export function ack(socket, event, ...args) {
  return socket.timeout(SAFETY_NET).emitWithAck(event, ...args);
}

/** Waits until `socket` (default setup) runs on websocket. */
export function upgraded(socket, timeout = SAFETY_NET) {
  return waitFor(() => socket.io.engine?.transport?.name === "websocket", { timeout, what: "upgrade to websocket" });
}

/** Resolves with the arguments of the next `event` on `socket`. */
export function nextEvent(socket, event, timeout = SAFETY_NET) {
  return within(timeout, new Promise((resolve) => socket.once(event, (...args) => resolve(args))), `event ${event}`);
}
