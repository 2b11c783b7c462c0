// Worker thread that publishes a burst, so the readers' event loop does
// nothing but read: `count` hub publishes of {k, pad} to `room` as event
// `event`, unpaced (no waiting for acks), then one `end` event. Posts
// {acked, failed} once every publish is acked.
import { parentPort, workerData } from "node:worker_threads";
import { io } from "socket.io-client";

const { url, room, event, count, padBytes } = workerData;
const pad = "x".repeat(padBytes);
const socket = io(url, { forceNew: true, reconnection: false, timeout: 10_000, transports: ["websocket"] });
socket.once("connect_error", (e) => parentPort.postMessage({ error: `publisher connect_error: ${e.message}` }));
socket.once("connect", () => {
  let acked = 0;
  let failed = null;
  const onAck = (r) => {
    if (r?.ok !== true && !failed) failed = r;
    if (++acked === count + 1) {
      parentPort.postMessage({ acked, failed });
      socket.disconnect();
    }
  };
  for (let k = 1; k <= count; k++) socket.emit("publish", { room, event, data: { k, pad } }, onAck);
  socket.emit("publish", { room, event: "end" }, onAck);
});
