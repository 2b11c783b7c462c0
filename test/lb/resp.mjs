// A streaming reader of the Redis protocol (RESP2 and RESP3) that counts
// what a Redis server sends one client: pub/sub messages (message,
// pmessage, smessage) and stream entries in XREAD / XREADGROUP replies.
// Used by the backplane bench to measure what each node receives.

const CRLF = 0x0d;

/**
 * Parses one value at `pos` of `buf`; returns [value, next] or null when
 * the buffer ends first. Strings come back as latin1 strings; aggregates
 * as arrays (maps as flat [k, v, k, v ...] arrays tagged with .isMap = true).
 */
function parse(buf, pos) {
  if (pos >= buf.length) return null;
  const type = buf[pos];
  const eol = buf.indexOf(CRLF, pos);
  if (eol < 0 || eol + 1 >= buf.length) return null;
  const line = buf.toString("latin1", pos + 1, eol);
  let next = eol + 2;
  switch (String.fromCharCode(type)) {
    case "+": case "-": case ":": case ",": case "#": case "(": case "_":
      return [line, next];
    case "$": case "=": case "!": {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (next + n + 2 > buf.length) return null;
      return [buf.toString("latin1", next, next + n), next + n + 2];
    }
    case "*": case ">": case "~": case "%": case "|": {
      let n = Number(line);
      if (n < 0) return [null, next];
      const isMap = type === 0x25 || type === 0x7c; // % |
      if (isMap) n *= 2;
      const out = [];
      for (let i = 0; i < n; i++) {
        const r = parse(buf, next);
        if (!r) return null;
        out.push(r[0]);
        next = r[1];
      }
      if (isMap) out.isMap = true;
      if (type === 0x7c) return parse(buf, next); // an attribute: the value after it counts
      return [out, next];
    }
    default:
      throw new Error(`RESP: unknown type byte 0x${type.toString(16)} at ${pos}`);
  }
}

const STREAM_ID = /^\d+-\d+$/;
const isEntries = (v) => Array.isArray(v) && v.length > 0 && v.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === "string" && STREAM_ID.test(e[0]));

/** Counts one top-level reply or push: {pubsub, entries}. */
function classify(v, c) {
  if (!Array.isArray(v) || v.length === 0) return;
  if (typeof v[0] === "string" && ["message", "pmessage", "smessage"].includes(v[0])) { c.pubsub++; return; }
  // XREAD: RESP2 [[stream, entries], ...]; RESP3 %{stream: entries}.
  if (v.isMap) {
    for (let i = 1; i < v.length; i += 2) if (isEntries(v[i])) c.entries += v[i].length;
    return;
  }
  for (const s of v) if (Array.isArray(s) && s.length === 2 && typeof s[0] === "string" && isEntries(s[1])) c.entries += s[1].length;
}

/** A counter fed with the bytes a Redis server sends: {pubsub, entries, bytes, feed(chunk), reset()}. */
export function respCounter() {
  let buf = Buffer.alloc(0);
  const c = {
    pubsub: 0, entries: 0, bytes: 0, errors: 0,
    feed(chunk) {
      c.bytes += chunk.length;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let pos = 0;
      for (;;) {
        let r;
        try { r = parse(buf, pos); } catch { c.errors++; buf = Buffer.alloc(0); return; }
        if (!r) break;
        classify(r[0], c);
        pos = r[1];
      }
      buf = buf.subarray(pos);
    },
    /** Bytes received but not yet a whole reply. */
    get pending() { return buf.length; },
    reset() { c.pubsub = 0; c.entries = 0; c.bytes = 0; },
  };
  return c;
}
