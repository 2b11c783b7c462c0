// A forked child holding part of the storm's clients (one Fleet), driven over IPC by
// scenarios/storm.mjs. It exits when told to, or when its parent goes away.
import { Fleet } from './fleet.mjs';

let fleet = null;
let t0 = null;
let ticker = null;

function send(m) {
  // The parent may be gone (interrupted run): then there is nobody to tell.
  if (process.connected) process.send(m, (err) => err && process.exit(0));
}

function progress() {
  if (!fleet) return;
  send({
    type: 'progress',
    total: fleet.clients.length,
    ready: fleet.readyCount(),
    disconnected: t0 === null ? 0 : fleet.countDisconnectedSince(t0),
    back: t0 === null ? 0 : fleet.countBackSince(t0),
  });
}

process.on('message', (m) => {
  switch (m.type) {
    case 'start':
      fleet = new Fleet({ ...m.fleet, record: ['probe'] });
      ticker = setInterval(progress, 200);
      fleet.connect({ timeoutMs: m.timeoutMs, batch: m.batch || 50, stepMs: m.stepMs || 25 }).then(progress);
      break;
    case 'mark':
      t0 = m.t0;
      break;
    case 'records':
      send({ type: 'records', id: m.id, records: fleet ? fleet.records() : [] });
      break;
    case 'probeStatus':
      send({ type: 'probeStatus', id: m.id, status: fleet.probeStatus(m.nonce) });
      break;
    case 'stop':
      clearInterval(ticker);
      if (fleet) fleet.close();
      setTimeout(() => process.exit(0), 100);
      break;
    default:
      break;
  }
});

process.on('disconnect', () => process.exit(0));
process.on('error', () => process.exit(0)); // IPC channel errors (EPIPE)
send({ type: 'hello' });
