// redis-outage: two server nodes share one Redis (--adapter redis --redis-url …; the harness
// runs its own redis-server on a free port). Redis is stopped, left down for a while and
// started again on the same port. Clients must stay connected throughout, and cross-node
// delivery (HTTP emit on one node, client publish on the other) must resume, exactly once and
// in order. A server that rejects --adapter redis makes the scenario "unsupported".
import { now, sleep, waitFor, fmtMs } from '../clock.mjs';
import { probe, probeStatus } from '../fleet.mjs';
import { RedisServer } from '../redis.mjs';
import { describeProbe } from './common.mjs';

const ORDERED = 10;

function rejectsAdapter(err) {
  if (!err.exit) return null;
  const text = (err.logTail || []).join('\n');
  const rejected = /flag provided but not defined|unknown flag|unknown adapter|unsupported|not supported|not implemented|invalid/i.test(text);
  if (!rejected || !/adapter|redis/i.test(text)) return null;
  return (err.logTail || []).filter((l) => !l.startsWith('#')).slice(-1)[0] || err.message;
}

export default {
  describe: 'two nodes on one Redis; Redis stopped and restarted: clients stay, cross-node delivery resumes',
  needsSpawn: 'the harness starts both nodes and Redis',
  timeoutMs: 120000,
  async run(ctx) {
    const r = ctx.newCase('stop-start');
    const n = Math.max(2, ctx.opts.clients || 10);
    r.clients = n;
    const redis = new RedisServer({ bin: ctx.opts.redisServer });
    ctx.defer(() => redis.stop('SIGKILL'));
    await redis.start();
    const args = ['--adapter', 'redis', '--redis-url', redis.url];
    let a;
    try {
      a = await ctx.server(args, { name: 'node-a' });
    } catch (err) {
      const why = rejectsAdapter(err);
      if (why) return r.unsupported(`server rejects --adapter redis: ${why}`).finish();
      throw err;
    }
    const b = await ctx.server(args, { name: 'node-b' });
    const fa = ctx.fleet({ url: a.url, count: Math.ceil(n / 2), roomCount: 1, roomPrefix: 'redis' });
    const fb = ctx.fleet({ url: b.url, count: Math.floor(n / 2), roomCount: 1, roomPrefix: 'redis', idBase: Math.ceil(n / 2) });
    const [okA, okB] = await Promise.all([fa.connect({ timeoutMs: 15000 }), fb.connect({ timeoutMs: 15000 })]);
    if (!r.check('clients connect to both nodes', okA && okB, n, fa.readyCount() + fb.readyCount())) return r.finish();
    const room = fa.rooms[0];
    const all = [...fa.clients, ...fb.clients];
    const cross = (fromUrl, clients, timeoutMs) => probe(fromUrl, [room], (nonce) => probeStatus(clients, nonce), { timeoutMs });

    const base = await Promise.all([cross(a.url, fb.clients, 5000), cross(b.url, fa.clients, 5000)]);
    if (!r.check('baseline: emits cross nodes (a→b and b→a) exactly once', base.every((p) => p.ok === p.total && !p.dupes), 'all', base.map(describeProbe).join(' / '))) return r.finish();

    const outageMs = 2000;
    ctx.progress(`redis down for ${fmtMs(outageMs)}`);
    const t0 = now();
    await redis.stop('SIGTERM');
    // While Redis is down: does a node still deliver to its own clients? Reported, not required.
    let local = null;
    try {
      local = await probe(a.url, [room], (nonce) => probeStatus(fa.clients, nonce), { timeoutMs: 1000 });
    } catch (err) {
      local = { error: err.message };
    }
    r.details.localDuringOutage = local.error ? local.error : describeProbe(local);
    await sleep(outageMs - (now() - t0));
    await redis.start();
    const tUp = now();

    ctx.progress('waiting for cross-node delivery');
    let attempts = 0;
    const resumed = await waitFor(async () => {
      attempts++;
      try {
        const [ab, ba] = await Promise.all([cross(a.url, fb.clients, 500), cross(b.url, fa.clients, 500)]);
        return ab.ok === ab.total && ba.ok === ba.total;
      } catch {
        return false;
      }
    }, { timeoutMs: 20000, stepMs: 250 });
    r.details.resumeMs = resumed ? Math.round(now() - tUp) : null;
    r.details.resumeAttempts = attempts;
    r.timings.allBackMs = r.details.resumeMs;
    r.check('cross-node delivery resumes after Redis is back (within 20s)', resumed, 'a→b and b→a delivered', resumed ? `after ${fmtMs(r.details.resumeMs)}` : `not after ${attempts} attempts`);

    const dropped = all.filter((c) => c.disconnects.some((d) => d.t >= t0)).length;
    r.check('clients stay connected through the outage', dropped === 0, 0, dropped);

    if (resumed) {
      const run = Math.random().toString(36).slice(2, 8);
      const [pub] = fa.clients;
      for (let seq = 1; seq <= ORDERED; seq++) {
        const ack = await pub.socket.timeout(5000).emitWithAck('publish', { room, event: 'msg', data: { run, seq } });
        if (!ack || ack.ok !== true) throw new Error(`publish: ${JSON.stringify(ack)}`);
      }
      const got = (c) => c.received('msg').filter((m) => m && m.run === run).map((m) => m.seq);
      const want = Array.from({ length: ORDERED }, (_, i) => i + 1).join(',');
      await waitFor(() => fb.clients.every((c) => got(c).length >= ORDERED), { timeoutMs: 5000 });
      await sleep(200);
      const bad = fb.clients.filter((c) => got(c).join(',') !== want);
      r.check(`after the outage, ${ORDERED} publishes on node a reach every node-b client exactly once, in order`, bad.length === 0,
        `${fb.clients.length}/${fb.clients.length}`, bad.length ? `${fb.clients.length - bad.length}/${fb.clients.length} (e.g. client ${bad[0].idx} got [${got(bad[0])}])` : `${fb.clients.length}/${fb.clients.length}`);
    }
    return r.finish();
  },
};
