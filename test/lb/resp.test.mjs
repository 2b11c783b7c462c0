// The bench's Redis reply counter: pub/sub messages and stream entries,
// RESP2 and RESP3, fed in arbitrary pieces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { respCounter } from "./resp.mjs";

const WIRE = [
  "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n", // RESP2 message
  ">4\r\n$8\r\npmessage\r\n$1\r\np\r\n$2\r\nch\r\n$1\r\nx\r\n", // RESP3 push pmessage
  ">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$4\r\n\r\n\r\n\r\n", // smessage whose payload is CRLF CRLF
  "%1\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$3\r\n1-1\r\n*0\r\n", // RESP3 XREAD: 2 entries
  "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*0\r\n", // RESP2 XREAD: 1 entry
  "+OK\r\n:1\r\n_\r\n*-1\r\n$-1\r\n", // replies that count nothing
].join("");

test("counts pub/sub messages and stream entries, whatever the chunking", () => {
  const b = Buffer.from(WIRE, "latin1");
  for (const step of [1, 2, 3, 7, b.length]) {
    const c = respCounter();
    for (let i = 0; i < b.length; i += step) c.feed(b.subarray(i, i + step));
    assert.deepEqual({ pubsub: c.pubsub, entries: c.entries, bytes: c.bytes, errors: c.errors },
      { pubsub: 3, entries: 3, bytes: b.length, errors: 0 }, `chunks of ${step}`);
  }
});

test("an unknown type byte is counted as an error, not thrown", () => {
  const c = respCounter();
  c.feed(Buffer.from("?x\r\n"));
  assert.equal(c.errors, 1);
});
