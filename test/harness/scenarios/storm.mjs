// storm: thousands of clients (spread over forked worker processes) lose their server at once
// (SIGKILL, then an immediate restart on the same port) and come back. With --connect-rate on
// the server, excess handshakes get HTTP 503 and those clients retry with their backoff until
// all are connected; the report gives the connect rate the server sustained.
import { now, fmtMs } from '../clock.mjs';
import { rateStats } from '../stats.mjs';
import { WorkerFleet } from '../workers.mjs';
import { connectErrorSummary, describeProbe, reconnectChecks } from './common.mjs';

/** Instants of each client's first connect at or after t0 (after its disconnect, when it had one). */
function connectTimes(records, t0) {
  const out = [];
  for (const c of records) {
    const d = c.disconnects.find((x) => x.t >= t0);
    const after = d ? d.t : t0;
    const cn = c.connects.find((x) => x.t >= after);
    if (cn) out.push(cn.t);
  }
  return out;
}

export default {
  describe: '2,000 clients over worker processes lose the server at once (SIGKILL + restart) under --connect-rate',
  needsSpawn: 'the harness kills and restarts the server process',
  timeoutMs: 240000,
  async run(ctx) {
    const n = ctx.opts.clients || 2000;
    const rate = ctx.opts.connectRate;
    const r = ctx.newCase('kill-restart');
    r.clients = n;
    const server = await ctx.server(rate ? ['--connect-rate', String(rate)] : [], { name: 'storm' });
    const fleet = new WorkerFleet({
      url: server.url,
      count: n,
      workers: ctx.opts.workers,
      roomCount: 20,
      roomPrefix: 'storm',
      ioOpts: ctx.ioOpts({ transports: ctx.opts.transports || ['websocket'] }),
    });
    ctx.defer(() => fleet.close());
    const expectMs = rate ? (n / rate) * 1000 : 0;
    const limitMs = 60000 + 3 * expectMs;
    r.details.connectRate = rate;
    r.details.workers = fleet.nWorkers;

    const tStart = now();
    fleet.mark(tStart);
    await fleet.start({ timeoutMs: limitMs });
    const ready = await fleet.waitReady({
      timeoutMs: limitMs,
      onTick: () => ctx.progress(`initial connect ${fleet.readyCount()}/${n}, ${fmtMs(now() - tStart)}`),
    });
    let records = await fleet.records();
    const initial = rateStats(connectTimes(records, 0));
    r.details.initial = {
      allConnectedMs: ready ? Math.round(now() - tStart) : null,
      perSecond: initial.perSecond && Math.round(initial.perSecond),
      peak1s: initial.peak1s,
      refused: connectErrorSummary(records, 0).total,
    };
    if (!r.check('all clients connect before the kill', ready, n, fleet.readyCount())) return r.finish();
    const base = await fleet.probe(server.url);
    if (!r.check('baseline: every client gets an emit to its room exactly once', base.ok === n && !base.dupes && !base.wrong, `${n}/${n}`, describeProbe(base))) return r.finish();

    ctx.progress('SIGKILL + restart');
    const t0 = now();
    fleet.mark(t0);
    await server.stop('SIGKILL');
    await server.start();
    r.details.downMs = Math.round(now() - t0);
    await fleet.waitBack({
      timeoutMs: limitMs,
      onTick: () => ctx.progress(`${fleet.sum('back')}/${n} back, ${fmtMs(now() - t0)}`),
    });
    records = await fleet.records();
    const s = reconnectChecks(r, records, t0);
    const rs = rateStats(connectTimes(records, t0));
    const errs = connectErrorSummary(records, t0);
    const refused503 = Object.entries(errs.kinds).filter(([k]) => /\b503\b/.test(k)).reduce((a, [, v]) => a + v, 0);
    r.details.sustainedRate = rs.perSecond && Math.round(rs.perSecond * 10) / 10;
    r.details.peak1s = rs.peak1s;
    r.details.refused = errs.total;
    r.details.refused503 = refused503;
    r.details.connectErrors = errs.kinds;
    if (rate && n > 2 * rate) {
      r.check('excess handshakes are refused with HTTP 503 (and retried)', refused503 > 0, '> 0 refusals with 503', `${refused503} (all failed attempts: ${JSON.stringify(errs.kinds)})`);
    }
    if (s.back === n) {
      const p = await fleet.probe(server.url);
      r.check('rooms restored: every client gets an emit to its room exactly once', p.ok === n && !p.dupes && !p.wrong, `${n}/${n}`, describeProbe(p));
    }
    await fleet.close();
    r.details.workersClosedMs = Math.round(fleet.closeMs);
    return r.finish();
  },
};
