// Building blocks for cluster tests: a private redis-server, a Node.js
// socket.io 4.8 node on @socket.io/redis-adapter (in this process, speaking
// the hub protocol), and a Redis sniffer that records the raw adapter traffic.
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { createRequire } from "node:module";
import readline from "node:readline";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
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

/** A node-redis v4 client, connected; errors are kept, not thrown. */
export async function redisClient(url) {
  const c = createClient({ url, socket: { reconnectStrategy: () => 200 } });
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
 * A Node.js socket.io 4.8 node with @socket.io/redis-adapter (node-redis v4
 * pub/sub clients) on `redisUrl`, listening on 127.0.0.1:0. Its sockets speak
 * the hub protocol (join / leave / publish / echo with acks) on "/" and on the
 * namespaces matching the regular expression `namespaces`, and carry
 * `socket.data = {node: "node", ...auth.data}`.
 * Resolves to {io, url, port, pub, sub, close()}.
 */
export async function startNodeNode(redisUrl, { key = "socket.io", requestsTimeout = 5000, namespaces = null } = {}) {
  const pub = await redisClient(redisUrl);
  const sub = pub.duplicate();
  sub.errors = [];
  sub.on("error", (e) => { if (sub.errors.length < 20) sub.errors.push(String(e)); });
  await sub.connect();

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub, { key, requestsTimeout }),
    pingInterval: 25_000,
    pingTimeout: 20_000,
  });
  const ok = (cb) => typeof cb === "function" && cb({ ok: true });
  const err = (cb, error) => typeof cb === "function" && cb({ error });
  const roomError = (room) => (typeof room !== "string" || !ROOM_RE.test(room) ? "invalid room name"
    : room.startsWith("user:") ? "room is reserved" : null);

  const hub = (socket) => {
    socket.data = { node: "node", ...(socket.handshake.auth?.data ?? {}) };
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
