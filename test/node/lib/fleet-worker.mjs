// Worker thread of slow.mjs's Fleet: `n` socket.io-client sockets (websocket
// transport) that join `room` and check that `event` carries {seq} = 1, 2, 3,
// ... exactly once and in order. counts[base + i] is client i's message count.
import { parentPort, workerData } from "node:worker_threads";
import { io } from "socket.io-client";

const { url, base, n, room, event } = workerData;
const counts = new Int32Array(workerData.counts);
const clients = [];

function track(i, socket) {
  const st = { i: base + i, socket, count: 0, next: 1, problems: [], disconnects: [] };
  socket.on(event, (d) => {
    const seq = d?.seq;
    if (seq !== st.next && st.problems.length < 3) st.problems.push(`got seq ${seq} after ${st.next - 1}`);
    st.next = seq + 1;
    st.count++;
    Atomics.store(counts, st.i, st.count);
  });
  socket.on("disconnect", (reason) => st.disconnects.push(reason));
  return st;
}

function connectOne(i) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 10_000, transports: ["websocket"] });
  const st = track(i, socket);
  clients.push(st);
  return new Promise((resolve, reject) => {
    socket.once("connect_error", (e) => reject(new Error(`client ${st.i}: connect_error ${e.message}`)));
    socket.once("connect", () => {
      socket.timeout(10_000).emit("join", room, (err, r) => {
        if (err || r?.ok !== true) reject(new Error(`client ${st.i}: join ${err?.message ?? JSON.stringify(r)}`));
        else resolve();
      });
    });
  });
}

async function ready() {
  for (let i = 0; i < n; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, j) => connectOne(i + j)));
  }
  return { clients: clients.length };
}

function report(expected) {
  const bad = [];
  let complete = 0;
  for (const st of clients) {
    const ok = st.count === expected && st.problems.length === 0 && st.disconnects.length === 0;
    if (ok) complete++;
    else if (bad.length < 5) bad.push({ client: st.i, count: st.count, last: st.next - 1, problems: st.problems, disconnects: st.disconnects });
  }
  return { clients: clients.length, complete, bad };
}

async function echo() {
  const errors = [];
  let ok = 0;
  await Promise.all(clients.map(async (st) => {
    const v = { client: st.i, t: Date.now() };
    try {
      const r = await st.socket.timeout(10_000).emitWithAck("echo", v);
      if (JSON.stringify(r) === JSON.stringify(v)) ok++;
      else errors.push(`client ${st.i}: echo returned ${JSON.stringify(r)}`);
    } catch (e) {
      errors.push(`client ${st.i}: ${e.message}`);
    }
  }));
  return { ok, errors: errors.slice(0, 5) };
}

function close() {
  for (const st of clients) st.socket.disconnect();
  return {};
}

parentPort.on("message", async (m) => {
  try {
    let result;
    switch (m.type) {
      case "ready": result = await ready(); break;
      case "report": result = report(m.expected); break;
      case "echo": result = await echo(); break;
      case "close": result = close(); break;
      default: throw new Error(`unknown command ${m.type}`);
    }
    parentPort.postMessage({ id: m.id, result });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: e.message });
  }
});
