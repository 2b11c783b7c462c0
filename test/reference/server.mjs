#!/usr/bin/env node
// Node reference hub: socket.io 4.8 speaking the README's hub protocol, for
// side-by-side runs against roomcast. Same flags (and ROOMCAST_* env vars) as
// `roomcast serve` where they matter; the rest are accepted and ignored.
//
//   node test/reference/server.mjs --addr 127.0.0.1:0 --ping-interval 1s
//
// Prints {"level":"info","msg":"listening","addr":"HOST:PORT"} on stderr once
// it listens. SIGINT/SIGTERM: /readyz turns 503, clients are closed, exit 0.
//
// --adapter redis|redis-streams puts the official Node adapters behind it
// (@socket.io/redis-adapter with `redis` clients, key --redis-prefix;
// @socket.io/redis-streams-adapter, stream --redis-prefix), on --redis-url.
import http from "node:http";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { Server } from "socket.io";

const require = createRequire(import.meta.url);

// ---- configuration --------------------------------------------------------

const DEFAULTS = {
  addr: "127.0.0.1:3000",
  "log-level": "info",
  path: "/socket.io/",
  "ping-interval": "25s",
  "ping-timeout": "20s",
  "max-payload": "1000000",
  "cors-origin": "*",
  "recovery-window": "2m",
  namespaces: "",
  "allow-publish": "true",
  "publish-self": "false",
  "api-key": "",
  "jwt-secret": "",
  adapter: "memory",
  "redis-url": "redis://127.0.0.1:6379",
  "redis-prefix": "socket.io",
};
const BOOLS = new Set(["allow-publish", "publish-self"]);

// Flags: --name value, --name=value, bare --bool. Env: ROOMCAST_NAME. Flags win.
function parseArgs(argv, env) {
  const out = {};
  for (const k of Object.keys(DEFAULTS)) {
    const e = env["ROOMCAST_" + k.toUpperCase().replaceAll("-", "_")];
    out[k] = e !== undefined ? e : DEFAULTS[k];
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "serve") continue; // accept `roomcast serve ...` style command lines
    if (!a.startsWith("-")) fail(`unexpected argument ${a}`);
    let [name, value] = a.replace(/^--?/, "").split(/=(.*)/s, 2);
    if (value === undefined) {
      if (BOOLS.has(name)) value = "true";
      else if (i + 1 < argv.length) value = argv[++i];
      else fail(`flag needs an argument: ${a}`);
    }
    out[name] = value; // unknown flags (e.g. --drain-window) are accepted and ignored
  }
  return out;
}

// Go time.ParseDuration subset: "0", "300ms", "1.5s", "2m", "1h30m".
function parseDuration(s) {
  if (s === "0") return 0;
  const units = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0, m, end = 0;
  while ((m = re.exec(s))) { ms += parseFloat(m[1]) * units[m[2]]; end = re.lastIndex; }
  if (end === 0 || end !== s.length) fail(`invalid duration ${JSON.stringify(s)}`);
  return ms;
}

function parseBool(name, s) {
  if (["1", "t", "true", "TRUE", "True"].includes(s)) return true;
  if (["0", "f", "false", "FALSE", "False"].includes(s)) return false;
  fail(`invalid boolean for --${name}: ${s}`);
}

function fail(msg) {
  process.stderr.write(JSON.stringify({ level: "error", msg }) + "\n");
  process.exit(2);
}

const flags = parseArgs(process.argv.slice(2), process.env);
const cfg = {
  addr: flags.addr,
  debug: flags["log-level"] === "debug",
  path: flags.path,
  pingInterval: parseDuration(flags["ping-interval"]),
  pingTimeout: parseDuration(flags["ping-timeout"]),
  maxPayload: Number(flags["max-payload"]),
  corsOrigin: flags["cors-origin"],
  recoveryWindow: parseDuration(flags["recovery-window"]),
  namespaces: flags.namespaces ? new RegExp(flags.namespaces) : null,
  allowPublish: parseBool("allow-publish", flags["allow-publish"]),
  publishSelf: parseBool("publish-self", flags["publish-self"]),
  apiKey: flags["api-key"],
  jwtSecret: flags["jwt-secret"],
  parser: flags.parser ?? "json",
  adapter: flags.adapter,
  redisURL: flags["redis-url"],
  redisPrefix: flags["redis-prefix"],
};
if (!["memory", "redis", "redis-streams"].includes(cfg.adapter)) fail(`invalid --adapter ${cfg.adapter} (memory, redis or redis-streams)`);
if (!["json", "msgpack"].includes(cfg.parser)) fail(`invalid --parser ${cfg.parser}`);
if (!Number.isInteger(cfg.maxPayload) || cfg.maxPayload <= 0) fail("invalid --max-payload");

function log(level, msg, fields = {}) {
  if (level === "debug" && !cfg.debug) return;
  process.stderr.write(JSON.stringify({ level, msg, ...fields }) + "\n");
}

// ---- auth ------------------------------------------------------------------

// Minimal HS256 JWT check: returns the claims, or null when the token is bad.
function verifyHS256(token, secret) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, p, sig] = parts;
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
    claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (header?.alg !== "HS256" || typeof claims !== "object" || claims === null) return null;
  const want = crypto.createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(sig, "base64url");
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
  const now = Date.now() / 1000;
  if (typeof claims.exp === "number" && now >= claims.exp) return null;
  if (typeof claims.nbf === "number" && now < claims.nbf) return null;
  if (typeof claims.sub !== "string" || claims.sub === "") return null;
  return claims;
}

function bearerOK(req) {
  if (!cfg.apiKey) return true;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  if (!m) return false;
  const a = Buffer.from(m[1]), b = Buffer.from(cfg.apiKey);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

// ---- hub protocol ---------------------------------------------------------

const ROOM_RE = /^[A-Za-z0-9_\-:./@#]{1,128}$/;

function roomError(room) {
  if (typeof room !== "string" || !ROOM_RE.test(room)) return "invalid room name";
  return null;
}
// Socket ids are 20 characters of base64url: a client may not use another
// socket's private room (nor leave its own), as with roomcast's hub.
const SOCKET_ID_RE = /^[A-Za-z0-9_-]{20}$/;
function clientRoomError(room) {
  return roomError(room) ?? (room.startsWith("user:") ? "room is reserved"
    : SOCKET_ID_RE.test(room) ? "rooms of 20 letters, digits, _ and - are reserved: they are socket ids" : null);
}

// Split socket.io handler arguments into values and the ack callback.
function splitAck(args) {
  const ack = typeof args.at(-1) === "function" ? args.pop() : () => {};
  return [args, ack];
}

function installHub(nsp) {
  if (cfg.jwtSecret) {
    nsp.use((socket, next) => {
      const claims = verifyHS256(socket.handshake.auth?.token, cfg.jwtSecret);
      if (!claims) return next(new Error("unauthorized"));
      socket.data.sub = claims.sub;
      next();
    });
  }
  nsp.on("connection", (socket) => {
    if (socket.data.sub) socket.join("user:" + socket.data.sub);
    log("debug", "socket connected", { nsp: socket.nsp.name, sid: socket.id, recovered: socket.recovered });
    socket.on("join", (...raw) => {
      const [[room], ack] = splitAck(raw);
      const err = clientRoomError(room);
      if (err) return ack({ error: err });
      socket.join(room);
      ack({ ok: true });
    });
    socket.on("leave", (...raw) => {
      const [[room], ack] = splitAck(raw);
      const err = clientRoomError(room);
      if (err) return ack({ error: err });
      socket.leave(room);
      ack({ ok: true });
    });
    socket.on("publish", (...raw) => {
      const [[msg], ack] = splitAck(raw);
      if (!cfg.allowPublish) return ack({ error: "publish is not allowed" });
      if (typeof msg !== "object" || msg === null) return ack({ error: "invalid publish message" });
      const err = clientRoomError(msg.room);
      if (err) return ack({ error: err });
      if (typeof msg.event !== "string" || msg.event === "") return ack({ error: "invalid event name" });
      const target = cfg.publishSelf ? socket.nsp.to(msg.room) : socket.to(msg.room);
      try {
        if (msg.data === undefined) target.emit(msg.event);
        else target.emit(msg.event, msg.data);
      } catch (e) {
        return ack({ error: e.message }); // reserved event names throw
      }
      ack({ ok: true });
    });
    socket.on("echo", (...raw) => {
      const [args, ack] = splitAck(raw);
      ack(...args);
    });
    socket.on("error", (err) => log("debug", "socket error", { sid: socket.id, err: err.message }));
    socket.on("disconnect", (reason) => log("debug", "socket disconnected", { sid: socket.id, reason }));
  });
}

// ---- HTTP -----------------------------------------------------------------

let draining = false;
let io;

function sendJSON(res, status, body) {
  const s = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(s) });
  res.end(s);
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on("data", (c) => {
      n += c.length;
      if (n > limit) { reject(Object.assign(new Error("body too large"), { status: 413 })); req.destroy(); return; }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function isStringArray(v) {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

// Validates an emit request; returns an error string or null.
function emitRequestError(b) {
  if (typeof b !== "object" || b === null || Array.isArray(b)) return "body must be a JSON object";
  if (b.namespace !== undefined && (typeof b.namespace !== "string" || !b.namespace.startsWith("/")))
    return "namespace must be a string starting with /";
  if (b.rooms !== undefined && !isStringArray(b.rooms)) return "rooms must be an array of strings";
  if (b.except !== undefined && !isStringArray(b.except)) return "except must be an array of strings";
  if (typeof b.event !== "string" || b.event === "") return "event must be a non-empty string";
  return null;
}

async function handleEmit(req, res) {
  if (req.method !== "POST") return sendJSON(res, 405, { error: "method not allowed" });
  if (!bearerOK(req)) return sendJSON(res, 401, { error: "unauthorized" });
  let body;
  try {
    body = JSON.parse(await readBody(req, cfg.maxPayload));
  } catch (e) {
    return sendJSON(res, e.status ?? 400, { error: e.status ? e.message : `invalid JSON: ${e.message}` });
  }
  const err = emitRequestError(body);
  if (err) return sendJSON(res, 400, { error: err });
  const name = body.namespace ?? "/";
  if (!io._nsps.has(name)) {
    // a dynamic namespace nobody has connected to yet has no sockets: nothing to do
    if (cfg.namespaces?.test(name)) return sendJSON(res, 200, { ok: true });
    return sendJSON(res, 400, { error: "unknown namespace" });
  }
  let op = io.of(name).to(body.rooms ?? []);
  if (body.except?.length) op = op.except(body.except);
  try {
    if (body.data === undefined) op.emit(body.event);
    else op.emit(body.event, body.data);
  } catch (e) {
    return sendJSON(res, 400, { error: e.message });
  }
  sendJSON(res, 200, { ok: true });
}

function onRequest(req, res) {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/api/v1/emit") {
    handleEmit(req, res).catch((e) => sendJSON(res, 500, { error: e.message }));
  } else if (url.pathname === "/healthz") {
    sendJSON(res, 200, { ok: true });
  } else if (url.pathname === "/readyz") {
    sendJSON(res, draining ? 503 : 200, { ok: !draining });
  } else {
    sendJSON(res, 404, { error: "not found" });
  }
}

// ---- main -----------------------------------------------------------------

const httpServer = http.createServer(onRequest);
const origins = cfg.corsOrigin === "*" ? "*" : cfg.corsOrigin.split(",").map((s) => s.trim());
io = new Server(httpServer, {
  path: cfg.path,
  pingInterval: cfg.pingInterval,
  pingTimeout: cfg.pingTimeout,
  maxHttpBufferSize: cfg.maxPayload,
  cors: { origin: origins },
  ...(cfg.parser === "msgpack" && { parser: require("socket.io-msgpack-parser") }),
  ...(cfg.recoveryWindow > 0 && {
    connectionStateRecovery: { maxDisconnectionDuration: cfg.recoveryWindow, skipMiddlewares: true },
  }),
});
const redisClients = [];
if (cfg.adapter !== "memory") {
  const { createClient } = require("redis");
  const client = createClient({ url: cfg.redisURL });
  client.on("error", (e) => log("error", "redis", { err: e.message }));
  redisClients.push(client);
  if (cfg.adapter === "redis") {
    const sub = client.duplicate();
    sub.on("error", (e) => log("error", "redis", { err: e.message }));
    redisClients.push(sub);
    await Promise.all(redisClients.map((c) => c.connect()));
    io.adapter(require("@socket.io/redis-adapter").createAdapter(client, sub, { key: cfg.redisPrefix }));
  } else {
    await client.connect();
    io.adapter(require("@socket.io/redis-streams-adapter").createAdapter(client, { streamName: cfg.redisPrefix }));
  }
}
installHub(io.of("/"));
if (cfg.namespaces) installHub(io.of(cfg.namespaces));

let bufferutil = false;
try { require("bufferutil"); bufferutil = true; } catch { /* ws falls back to JS masking */ }

const m = /^(.*):(\d+)$/.exec(cfg.addr);
if (!m) fail(`invalid --addr ${cfg.addr}`);
const host = m[1].replace(/^\[(.*)\]$/, "$1") || "0.0.0.0";
httpServer.listen(Number(m[2]), host, () => {
  const a = httpServer.address();
  const addr = a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  log("info", "listening", { addr, bufferutil, recovery_window_ms: cfg.recoveryWindow, adapter: cfg.adapter });
});

function shutdown(signal) {
  if (draining) return;
  draining = true;
  log("info", "shutting down", { signal });
  io.close(() => {
    Promise.allSettled(redisClients.map((c) => c.quit())).then(() => process.exit(0));
  });
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
