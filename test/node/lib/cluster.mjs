// Building blocks for cluster tests: a private redis-server, a Node.js
// socket.io 4.8 node on @socket.io/redis-adapter (pub/sub or sharded) or
// @socket.io/redis-streams-adapter (in this process, speaking the hub
// protocol), a Redis sniffer that records the raw pub/sub adapter traffic,
// and a MONITOR tap that records every command the nodes send.
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { createRequire } from "node:module";
import readline from "node:readline";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

// The msgpack codec the Node adapter itself uses, resolved from the adapter's own location.
const notepack = createRequire(createRequire(import.meta.url).resolve("@socket.io/redis-adapter"))("notepack.io");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** PING over a raw socket; true on +PONG. */
function ping(port, timeout = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (v) => { s.destroy(); resolve(v); };
    s.setTimeout(timeout, () => done(false));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => { buf += d; if (buf.includes("\r\n")) done(buf.startsWith("+PONG")); });
    s.on("error", () => done(false));
  });
}

// Child processes still running; killed if this test process ends without stopping them.
const live = new Set();
process.on("exit", () => { for (const p of live) p.kill("SIGKILL"); });

/**
 * Starts `redis-server` on a free port (no persistence) and waits for PING.
 * Resolves to {port, url, stop(), logs()}.
 */
export async function startRedis({ timeout = 10_000 } = {}) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(proc);
    const lines = [];
    const keep = (l) => { lines.push(l); if (lines.length > 200) lines.shift(); };
    readline.createInterface({ input: proc.stdout }).on("line", keep);
    readline.createInterface({ input: proc.stderr }).on("line", keep);
    let exitInfo = null;
    const exited = new Promise((resolve) => proc.on("exit", (code, signal) => {
      live.delete(proc);
      exitInfo = { code, signal };
      resolve(exitInfo);
    }));
    proc.on("error", () => {});
    const stop = async () => {
      if (exitInfo) return exitInfo;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
      return exitInfo;
    };
    const deadline = Date.now() + timeout;
    while (!exitInfo && Date.now() < deadline) {
      if (await ping(port)) {
        return { port, url: `redis://127.0.0.1:${port}`, stop, logs: () => lines.join("\n") };
      }
      await sleep(50);
    }
    await stop();
    // The port may have been taken between freePort() and the bind: try another once or twice.
    if (attempt < 2 && lines.some((l) => /Address already in use/i.test(l))) continue;
    throw new Error(`redis-server on ${port} not ready within ${timeout} ms: ${lines.slice(-5).join(" | ")}`);
  }
}

/**
 * A node-redis v4 client, connected; errors are kept, not thrown. `name`
 * (CLIENT SETNAME, copied by duplicate()) tells its connections apart in
 * CLIENT LIST.
 */
export async function redisClient(url, { name } = {}) {
  const c = createClient({ url, socket: { reconnectStrategy: () => 200 }, ...(name ? { name } : {}) });
  c.errors = [];
  c.on("error", (e) => { if (c.errors.length < 20) c.errors.push(String(e)); });
  await c.connect();
  return c;
}

/** Closes a node-redis client, quitting politely first. */
export async function closeRedisClient(c) {
  if (!c?.isOpen) return;
  try {
    await Promise.race([c.quit(), sleep(1000).then(() => { throw new Error("quit timeout"); })]);
  } catch {
    try { await c.disconnect(); } catch { /* already gone */ }
  }
}

const ROOM_RE = /^[A-Za-z0-9_\-:./@#]{1,128}$/;

/**
 * A Node.js socket.io 4.8 node on `redisUrl`, listening on 127.0.0.1:0. Its
 * sockets speak the hub protocol (join / leave / publish / echo with acks) on
 * "/" and on the namespaces matching the regular expression `namespaces`, and
 * carry `socket.data = {node: "node", ...auth.data}` (a recovered socket keeps
 * the data of its session).
 *
 * `adapter` picks the Node adapter:
 * - "redis" (default): @socket.io/redis-adapter createAdapter(pub, sub, {key, requestsTimeout});
 * - "sharded": @socket.io/redis-adapter createShardedAdapter(pub, sub, {channelPrefix: key}) (dynamic mode);
 * - "streams": @socket.io/redis-streams-adapter createAdapter(pub, {channelPrefix: key, ...streamsOpts})
 *   (no `sub`: the adapter duplicates `pub` itself).
 * `connectionStateRecovery` is passed to the Server as is (off when false).
 * `clientName` names the Redis connections (the adapters' duplicates too).
 * Resolves to {io, url, port, pub, sub, adapter, close()}.
 */
export async function startNodeNode(redisUrl, {
  key = "socket.io", requestsTimeout = 5000, namespaces = null,
  adapter = "redis", streamsOpts = {}, connectionStateRecovery = false, clientName,
} = {}) {
  if (!["redis", "sharded", "streams"].includes(adapter)) throw new Error(`startNodeNode: unknown adapter ${JSON.stringify(adapter)}`);
  const pub = await redisClient(redisUrl, { name: clientName });
  let sub = null;
  if (adapter !== "streams") {
    sub = pub.duplicate();
    sub.errors = [];
    sub.on("error", (e) => { if (sub.errors.length < 20) sub.errors.push(String(e)); });
    await sub.connect();
  }
  const adapterFactory = adapter === "redis" ? createAdapter(pub, sub, { key, requestsTimeout })
    : adapter === "sharded" ? createShardedAdapter(pub, sub, { channelPrefix: key })
      : createStreamsAdapter(pub, { channelPrefix: key, ...streamsOpts });

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: adapterFactory,
    pingInterval: 25_000,
    pingTimeout: 20_000,
    ...(connectionStateRecovery ? { connectionStateRecovery } : {}),
  });
  const ok = (cb) => typeof cb === "function" && cb({ ok: true });
  const err = (cb, error) => typeof cb === "function" && cb({ error });
  const roomError = (room) => (typeof room !== "string" || !ROOM_RE.test(room) ? "invalid room name"
    : room.startsWith("user:") ? "room is reserved" : null);

  const hub = (socket) => {
    if (!socket.recovered) socket.data = { node: "node", ...(socket.handshake.auth?.data ?? {}) };
    socket.on("join", async (room, cb) => {
      const e = roomError(room);
      if (e) return err(cb, e);
      await socket.join(room);
      ok(cb);
    });
    socket.on("leave", async (room, cb) => {
      const e = roomError(room);
      if (e) return err(cb, e);
      await socket.leave(room);
      ok(cb);
    });
    socket.on("publish", (req, cb) => {
      if (typeof req !== "object" || req === null) return err(cb, "publish takes {room, event, data}");
      const e = roomError(req.room);
      if (e) return err(cb, e);
      if (typeof req.event !== "string" || req.event === "") return err(cb, "event must be a non-empty string");
      if ("data" in req) socket.to(req.room).emit(req.event, req.data);
      else socket.to(req.room).emit(req.event);
      ok(cb);
    });
    socket.on("echo", (...args) => {
      const cb = args.pop();
      if (typeof cb === "function") cb(...args);
    });
  };
  io.on("connection", hub);
  if (namespaces) io.of(namespaces).on("connection", hub);

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(0, "127.0.0.1", resolve);
  });
  const { port } = httpServer.address();

  let closed = false;
  return {
    io,
    pub,
    sub,
    adapter,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      if (closed) return;
      closed = true;
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(() => resolve()));
      await closeRedisClient(sub);
      await closeRedisClient(pub);
    },
  };
}

/**
 * Subscribes to every channel under `key` and keeps the raw messages (at most
 * `max`): {channel, payload: Buffer}. `decoded()` turns them into objects
 * (JSON or msgpack) for inspection.
 */
export async function startSniffer(redisUrl, { key = "socket.io", max = 2000 } = {}) {
  const c = await redisClient(redisUrl);
  const messages = [];
  await c.pSubscribe(`${key}*`, (payload, channel) => {
    if (messages.length < max) messages.push({ channel: channel.toString(), payload });
  }, true);
  return {
    messages,
    clear() { messages.length = 0; },
    decoded() {
      return messages.map(({ channel, payload }) => {
        let value;
        try {
          value = payload[0] === 0x7b ? JSON.parse(payload.toString()) : notepack.decode(payload);
        } catch (e) {
          value = { undecodable: String(e) };
        }
        return { channel, value };
      });
    },
    close: () => closeRedisClient(c),
  };
}

/** Splits one MONITOR line's quoted arguments, undoing Redis's escapes (sdscatrepr): Buffers. */
function monitorArgs(s) {
  const args = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] !== '"') { i++; continue; }
    i++;
    const bytes = [];
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) {
        const c = s[i + 1];
        if (c === "x") { bytes.push(parseInt(s.slice(i + 2, i + 4), 16)); i += 4; continue; }
        bytes.push({ n: 10, r: 13, t: 9, a: 7, b: 8 }[c] ?? c.charCodeAt(0));
        i += 2;
        continue;
      }
      bytes.push(s.charCodeAt(i));
      i++;
    }
    i++;
    args.push(Buffer.from(bytes));
  }
  return args;
}

/**
 * Taps the commands Redis executes (MONITOR over a raw connection) and keeps
 * at most `max`: {at, client ("ip:port" of the connection that sent it),
 * cmd (upper case), args: Buffer[]}. `since(mark)` lists the commands after
 * `mark()`; `commands(names)` filters by command name. The tap's own
 * connection is not monitored by itself.
 */
export async function startMonitor(port, { max = 20_000 } = {}) {
  const sock = net.connect({ host: "127.0.0.1", port });
  const entries = [];
  let dropped = 0;
  let buf = "";
  let ok;
  const ready = new Promise((resolve, reject) => {
    ok = resolve;
    sock.once("error", reject);
    setTimeout(() => reject(new Error("MONITOR: no +OK within 3 s")), 3000).unref();
  });
  sock.setEncoding("latin1"); // one char per byte; MONITOR escapes everything non-printable anyway
  sock.on("connect", () => sock.write("MONITOR\r\n"));
  sock.on("error", () => {});
  sock.on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\r\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (line === "+OK") { ok(); continue; }
      const m = /^\+(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$/.exec(line);
      if (!m) continue;
      const [cmd, ...args] = monitorArgs(m[3]);
      if (!cmd) continue;
      entries.push({ at: Number(m[1]), client: m[2], cmd: cmd.toString().toUpperCase(), args });
      if (entries.length > max) { entries.shift(); dropped++; }
    }
  });
  await ready;
  return {
    entries,
    mark: () => dropped + entries.length,
    since: (mark) => entries.slice(Math.max(0, mark - dropped)),
    commands: (names, mark = 0) => entries.slice(Math.max(0, mark - dropped)).filter((e) => [].concat(names).includes(e.cmd)),
    close: () => new Promise((resolve) => { sock.once("close", resolve); sock.destroy(); }),
  };
}

/**
 * A TCP proxy on 127.0.0.1:0 to 127.0.0.1:`upstream`. `setUpstream(port)`
 * changes where new connections go; while `hold()` is on, new connections
 * are accepted but wait (their bytes buffered) until `release()`.
 * `dropAll()` destroys every open connection. `log` lists each accepted
 * connection's upstream port, in order.
 * With `lag: {match: RegExp, ms}`, a connection whose client has sent bytes
 * matching `match` (read as latin1) gets everything the upstream sends it
 * from then on `ms` later, in order (e.g. a Redis connection that runs
 * XREAD: a stream reader that lags behind the stream).
 * Resolves to {port, url, setUpstream, hold, release, dropAll, log, lagged, close()}.
 */
export async function startProxy(upstream, { lag = null } = {}) {
  let target = upstream;
  let held = false;
  const waiting = [];
  const open = new Set();
  const log = [];
  const lagged = { count: 0 }; // connections that lag
  const connect = (down) => {
    if (down.destroyed) return;
    const port = target;
    log.push(port);
    const up = net.connect({ host: "127.0.0.1", port });
    open.add(up);
    const end = () => { down.destroy(); up.destroy(); open.delete(up); open.delete(down); };
    up.on("error", end);
    down.on("error", end);
    up.on("close", end);
    down.on("close", end);
    if (!lag) {
      down.pipe(up);
      up.pipe(down);
      return;
    }
    let marked = false;
    let last = 0; // when the last delayed chunk is due
    down.on("data", (d) => {
      if (!marked && lag.match.test(d.toString("latin1"))) { marked = true; lagged.count++; }
      up.write(d);
    });
    up.on("data", (d) => {
      if (!marked) { down.write(d); return; }
      const due = Math.max(Date.now() + lag.ms, last);
      last = due;
      setTimeout(() => { if (!down.destroyed) down.write(d); }, due - Date.now());
    });
    down.resume();
  };
  const server = net.createServer((down) => {
    open.add(down);
    down.pause();
    if (held) waiting.push(down);
    else connect(down);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log,
    lagged,
    get waiting() { return waiting.length; },
    setUpstream(p) { target = p; },
    hold() { held = true; },
    release() {
      held = false;
      for (const down of waiting.splice(0)) connect(down);
    },
    dropAll() { for (const s of [...open]) s.destroy(); },
    close() {
      held = false;
      for (const s of [...open, ...waiting.splice(0)]) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
