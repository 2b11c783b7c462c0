// ORDERED HANDLING: the events of one socket are handled in the order sent,
// so the acks of 5,000 back-to-back echo events come back in send order.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { scenario, useServer, TRANSPORTS, waitFor, sleep, SAFETY_NET } from "./lib/harness.mjs";

const COUNT = 5000;

describe("ordered handling", () => {
  const srv = useServer(["--log-level", "info"]);

  for (const { name, opts } of TRANSPORTS) {
    scenario(`${name}: ${COUNT} echo events without awaiting; acks in send order`, { timeout: 300_000 }, async (s) => {
      // upgrade: start polling-only and trigger the websocket probe by hand after
      // the first 1,000 sends (engine.io-client's internal _probe, as its onOpen
      // does), then keep sending in chunks, so the upgrade happens mid-burst
      const manual = name === "upgrade";
      const c = await s.client(srv().url, manual ? { upgrade: false } : opts);
      let upgradedAt = -1;
      c.io.engine.once("upgrade", () => { upgradedAt = order.length; });
      const order = [];
      const mismatched = [];
      let disconnects = 0;
      c.on("disconnect", () => disconnects++);
      const t0 = Date.now();
      for (let i = 0; i < COUNT; i++) {
        c.emit("echo", { i }, (r) => {
          order.push(r?.i);
          if (r?.i !== i && mismatched.length < 5) mismatched.push(`ack for ${i} carried ${JSON.stringify(r)}`);
        });
        if (manual && i === 999) c.io.engine._probe("websocket");
        if (manual && i >= 1000 && i % 100 === 0) await sleep(1);
      }
      const sent = Date.now() - t0;
      try {
        await waitFor(() => order.length >= COUNT, { timeout: 4 * SAFETY_NET, interval: 20, what: `${COUNT} acks` });
      } finally {
        s.note(`${name}: sent ${COUNT} in ${sent} ms; ${order.length} acks after ${Date.now() - t0} ms` +
          (manual ? `; upgraded after ${upgradedAt} acks` : ""));
      }
      await sleep(100);
      assert.deepEqual(mismatched, [], "an ack carried another request's value");
      const outOfOrder = order.findIndex((v, k) => v !== k);
      assert.equal(outOfOrder, -1, `ack #${outOfOrder} was for ${order[outOfOrder]}`);
      assert.equal(order.length, COUNT);
      assert.equal(disconnects, 0);
      if (manual) assert.equal(c.io.engine.transport.name, "websocket", "the upgrade did not complete");
    });
  }

  scenario("publishes from one socket reach a polling subscriber in send order (mixed with echoes)", { timeout: 60_000 }, async (s) => {
    // The 2,000-message burst outruns a polling client's GET cycle, so it must
    // fit in roomcast's send queue (default --send-queue-packets 1024, policy
    // disconnect); this scenario is about order, not backpressure. The
    // reference server accepts and ignores the flag.
    const big = await s.server(["--log-level", "info", "--send-queue-packets", "4096"]);
    const pub = await s.client(big.url, { transports: ["websocket"] });
    const sub = await s.client(big.url, { transports: ["polling"] });
    let disconnect = null;
    sub.on("disconnect", (reason) => { disconnect = reason; });
    await sub.timeout(5000).emitWithAck("join", "ord");
    const got = [];
    sub.on("n", (k) => got.push(k));
    let echoes = 0;
    for (let k = 0; k < 2000; k++) {
      pub.emit("publish", { room: "ord", event: "n", data: k });
      if (k % 7 === 0) pub.emit("echo", k, () => echoes++);
    }
    await waitFor(() => got.length >= 2000 || disconnect, { timeout: 30_000, interval: 20, what: "2000 publishes at the subscriber" });
    assert.equal(disconnect, null, `subscriber disconnected after ${got.length} messages`);
    const bad = got.findIndex((v, k) => v !== k);
    assert.equal(bad, -1, `message #${bad} was ${got[bad]}`);
    await waitFor(() => echoes === Math.ceil(2000 / 7), { what: "echo acks" });
  });
});
