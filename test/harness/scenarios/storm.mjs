// storm: thousands of clients (spread over forked worker processes) lose their server at once
// (SIGKILL, then an immediate restart on the same port) and come back. With --connect-rate on
// the server, excess handshakes get HTTP 503 and those clients retry with their backoff until
// all are connected; the report gives the connect rate the server sustained.
import { now, fmtMs, sleep } from '../clock.mjs';
import { request } from '../http.mjs';
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

/**
 * Samples the server's open connection count (roomcast_connections_open on /metrics) every
 * 250 ms: a server-side view of the connect rate. Stays empty for servers without that metric.
 */
function sampleOpenConnections(url) {
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; i < 2400 && !stopped; i++) {
      try {
        const res = await request('GET', `${url}/metrics`, { timeoutMs: 1000 });
        const lines = res.body.split('\n').filter((l) => l.startsWith('roomcast_connections_open'));
        if (res.status === 200 && lines.length) samples.push({ t: now(), open: lines.reduce((n, l) => n + Number(l.split(' ').pop()), 0) });
      } catch {
        // server down (restarting): no sample
      }
      await sleep(250);
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Average and busiest-second growth of the open connection count between from and to. */
function serverRate(samples, from, to) {
  const win = samples.filter((s) => s.t >= from && s.t <= to);
  if (win.length < 2) return null;
  let peak = 0;
  for (let i = 0, j = 0; i < win.length; i++) {
    while (win[i].t - win[j].t > 1000) j++;
    const span = win[i].t - win[j].t;
    if (span >= 750) peak = Math.max(peak, ((win[i].open - win[j].open) * 1000) / span);
  }
  const first = win.findIndex((s) => s.open > win[0].open);
  const start = win[Math.max(0, first - 1)];
  const last = win[win.length - 1];
  const perSecond = last.t > start.t ? ((last.open - start.open) * 1000) / (last.t - start.t) : null;
  return { perSecond: perSecond && Math.round(perSecond), peak1s: Math.round(peak), samples: win.length };
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

    const sampler = sampleOpenConnections(server.url);
    ctx.defer(() => sampler.stop());
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
      server: serverRate(sampler.samples, tStart, now()),
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
    await sampler.stop();
    r.details.server = serverRate(sampler.samples, t0, s.lastBackAt ?? now());
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
