// Wire-level helpers: a raw Engine.IO WebSocket client, plain HTTP requests,
// and HS256 token signing.
import http from "node:http";
import crypto from "node:crypto";
import WebSocket from "ws";

/**
 * The default bound of every wait on an event that should come at once
 * (connect, ack, a condition, an event): it only turns a hang into a clear
 * failure, so it is generous enough for a loaded 2-core machine and never
 * measures anything. A test whose subject is a timer passes its own bounds.
 */
export const SAFETY_NET = 30_000;

/**
 * A raw Engine.IO v4 WebSocket client. Text frames are queued and read with
 * next(); pings ("2") are answered with "3" when autoPong is on (default) and
 * counted either way.
 */
export class RawWs {
  static open(addr, { path = "/socket.io/", query = "EIO=4&transport=websocket", autoPong = true, timeout = SAFETY_NET } = {}) {
    const ws = new WebSocket(`ws://${addr}${path}?${query}`);
    const raw = new RawWs(ws, autoPong);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { ws.terminate(); reject(new Error("raw websocket: no open within timeout")); }, timeout);
      ws.once("open", () => { clearTimeout(t); resolve(raw); });
      ws.once("error", (e) => { clearTimeout(t); reject(e); });
      ws.once("unexpected-response", (req, res) => {
        clearTimeout(t);
        reject(new Error(`raw websocket: HTTP ${res.statusCode} instead of upgrade`));
      });
    });
  }

  constructor(ws, autoPong) {
    this.ws = ws;
    this.autoPong = autoPong;
    this.queue = [];
    this.waiters = [];
    this.pings = 0;
    this.openedAt = Date.now();
    this.closedAt = null;
    this.closeCode = null;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closedAt = Date.now();
        this.closeCode = code;
        resolve({ code, reason: reason.toString(), at: this.closedAt });
        this._wake();
      });
    });
    ws.on("error", () => { /* surfaced through close */ });
    ws.on("message", (data, isBinary) => {
      const msg = isBinary ? data : data.toString();
      if (msg === "2") {
        this.pings++;
        if (this.autoPong) { this.send("3"); return; }
      }
      this.queue.push(msg);
      this._wake();
    });
  }

  _wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  send(data) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  /** Next queued message matching `pred` (removed from the queue). */
  async next(pred = () => true, timeout = SAFETY_NET) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const i = this.queue.findIndex(pred);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.closedAt) throw new Error(`raw websocket closed (code ${this.closeCode}) while waiting; queue: ${JSON.stringify(this.queue.slice(0, 5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`raw websocket: no matching message within ${timeout} ms; queue: ${JSON.stringify(this.queue.slice(0, 5))}`);
      await new Promise((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Reads the Engine.IO open packet ("0{...}") and returns its JSON. */
  async handshake(timeout = SAFETY_NET) {
    const m = await this.next((x) => typeof x === "string" && x.startsWith("0"), timeout);
    return JSON.parse(m.slice(1));
  }

  /** Sends a Socket.IO CONNECT to `nsp` and resolves with the reply packet text. */
  async connect(nsp = "/", auth, timeout = SAFETY_NET) {
    const prefix = nsp === "/" ? "" : `${nsp},`;
    this.send(`40${prefix}${auth === undefined ? "" : JSON.stringify(auth)}`);
    return this.next((x) => typeof x === "string" && (x.startsWith(`40${prefix}`) || x.startsWith(`44${prefix}`)), timeout);
  }

  /** Resolves when the server closes the connection; rejects after `timeout` ms. */
  waitClosed(timeout = SAFETY_NET) {
    let t;
    return Promise.race([
      this.closed,
      new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`raw websocket still open after ${timeout} ms`)), timeout); }),
    ]).finally(() => clearTimeout(t));
  }

  terminate() { this.ws.terminate(); }
}

/**
 * A plain HTTP request. Resolves to {status, headers, text, json()} once the
 * whole response has arrived. `body` is a string or Buffer.
 */
export function request(url, { method = "GET", headers = {}, body, agent, timeout = SAFETY_NET } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, timeout }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({
          status: res.statusCode,
          headers: res.headers,
          text,
          json() {
            try { return JSON.parse(text); } catch { throw new Error(`response is not JSON: ${JSON.stringify(text.slice(0, 200))}`); }
          },
        });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`HTTP ${method} ${url}: no response within ${timeout} ms`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** POSTs a JSON emit request to the HTTP API. */
export function apiEmit(srv, payload, { key, agent, raw } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  return request(`${srv.url}/api/v1/emit`, {
    method: "POST", headers, agent, body: raw ?? JSON.stringify(payload),
  });
}

/** Signs `claims` as an HS256 JWT with `secret` (optionally with another alg in the header). */
export function signHS256(claims, secret, header = { alg: "HS256", typ: "JWT" }) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const data = `${b64(header)}.${b64(claims)}`;
  const sig = crypto.createHmac("sha256", secret).update(data).digest("base64url");
  return `${data}.${sig}`;
}

/** Decodes an Engine.IO v4 polling payload into its packets (split on \x1e). */
export function decodePayload(text) {
  return text === "" ? [] : text.split("\x1e");
}
