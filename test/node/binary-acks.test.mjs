// Events and acks carrying binary attachments; client-side ack timeouts.
import { describe } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { scenario, useServer, TRANSPORTS, ack, nextEvent, upgraded } from "./lib/harness.mjs";

/** Replaces every binary value (Buffer, ArrayBuffer, typed array) by {bin: hex} for comparison. */
function norm(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    const b = v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { bin: b.toString("hex") };
  }
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

const nested = () => ({
  name: "payload",
  head: Buffer.from([0, 1, 2, 255]),
  list: [Buffer.from("abc"), "text", 7, { deeper: Buffer.from([9, 9]), arr: [Buffer.alloc(0)] }],
  big: crypto.randomBytes(64 * 1024),
});

describe("binary and acks", () => {
  const srv = useServer([]);

  for (const { name, opts } of TRANSPORTS) {
    describe(name, () => {
      scenario("echo round-trips a Buffer", async (s) => {
        const c = await s.client(srv().url, opts);
        const buf = Buffer.from([1, 2, 3, 4, 5]);
        assert.deepEqual(norm(await ack(c, "echo", buf)), norm(buf));
        assert.deepEqual(norm(await ack(c, "echo", Buffer.alloc(0))), norm(Buffer.alloc(0)));
      });

      scenario("echo round-trips nested binary attachments", async (s) => {
        const c = await s.client(srv().url, opts);
        const v = nested();
        assert.deepEqual(norm(await ack(c, "echo", v)), norm(v));
        // a binary ack interleaved with text acks keeps each ack matched to its request
        const results = await Promise.all([
          ack(c, "echo", "t1"), ack(c, "echo", Buffer.from("b1")), ack(c, "echo", "t2"), ack(c, "echo", [Buffer.from("b2"), Buffer.from("b3")]),
        ]);
        assert.deepEqual(norm(results), norm(["t1", Buffer.from("b1"), "t2", [Buffer.from("b2"), Buffer.from("b3")]]));
        if (name === "upgrade") await upgraded(c);
      });

      scenario("publish delivers binary data to the room", async (s) => {
        const pub = await s.client(srv().url, opts);
        const sub = await s.client(srv().url, opts);
        await ack(sub, "join", "bin");
        const got = nextEvent(sub, "file");
        const data = nested();
        assert.deepEqual(await ack(pub, "publish", { room: "bin", event: "file", data }), { ok: true });
        assert.deepEqual(norm((await got)[0]), norm(data));
      });

      scenario("emitWithAck with a timeout rejects when the server never acks", async (s) => {
        const c = await s.client(srv().url, opts);
        const t0 = Date.now();
        await assert.rejects(c.timeout(300).emitWithAck("no-such-event", 1, Buffer.from([1])), /operation has timed out/);
        const took = Date.now() - t0;
        assert.ok(took >= 290, `rejected after ${took} ms, before the 300 ms timeout`);
        assert.ok(c.connected, "an unknown event must not disconnect the client");
        assert.equal(await ack(c, "echo", "ok"), "ok");
      });
    });
  }
});
