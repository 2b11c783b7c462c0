// blackhole: the proxy silently stops forwarding (nothing is closed; bytes wait as on a dead
// link), so only Engine.IO heartbeats can notice.
//   short: shorter than the ping timeout → no client disconnects, and an emit sent meanwhile
//          arrives once the link is back;
//   long:  longer than ping interval + timeout → every client disconnects with "ping timeout"
//          while the link is still dead, and all reconnect once it is unblocked.
import { now, sleep, fmtMs } from '../clock.mjs';
import { request } from '../http.mjs';
import { backTicker, connectAndBaseline, describeProbe, membershipCheck, reconnectChecks } from './common.mjs';
import { percentile } from '../stats.mjs';

/** pingInterval/pingTimeout as the server announced them (engine handshake). */
async function heartbeat(fleet, url) {
  const e = fleet.clients[0]?.socket?.io?.engine;
  if (e && e._pingInterval > 0) return { pingInterval: e._pingInterval, pingTimeout: e._pingTimeout };
  const res = await request('GET', new URL('/socket.io/?EIO=4&transport=polling', url).href);
  const open = JSON.parse(res.body.slice(res.body.indexOf('{')));
  return { pingInterval: open.pingInterval, pingTimeout: open.pingTimeout };
}

export default {
  describe: 'silent drop shorter / longer than the ping timeout',
  timeoutMs: 180000,
  async run(ctx) {
    const n = ctx.opts.clients || 20;
    const short = ctx.newCase('short');
    const { url } = await ctx.target(['--ping-interval', ctx.opts.pingInterval, '--ping-timeout', ctx.opts.pingTimeout], { name: 'blackhole' });
    const proxy = await ctx.proxy(url);
    const fleet = ctx.fleet({ url: proxy.url, count: n, roomCount: Math.max(1, Math.ceil(n / 5)), roomPrefix: 'blackhole' });
    short.clients = n;
    if (!(await connectAndBaseline(ctx, short, fleet, url))) return short.finish();
    const hb = await heartbeat(fleet, url);
    const cycle = hb.pingInterval + hb.pingTimeout;
    const shortMs = Math.max(100, Math.round(hb.pingTimeout * 0.4));
    short.details.heartbeat = hb;
    short.details.blackholeMs = shortMs;

    ctx.progress(`short: blackhole ${fmtMs(shortMs)}`);
    let t0 = now();
    proxy.blackhole();
    const probing = fleet.probe(url, { timeoutMs: shortMs + cycle + 5000 });
    await sleep(shortMs);
    proxy.unblock();
    const p = await probing;
    // Watch one more full heartbeat cycle: a late ping timeout would show up here.
    await sleep(cycle + 500);
    const dropped = fleet.countDisconnectedSince(t0);
    short.check('no client disconnects', dropped === 0, 0, dropped);
    short.check('an emit sent during the blackhole arrives exactly once after it', p.ok === p.total && !p.dupes, `${p.total}/${p.total}`, describeProbe(p));
    short.finish();

    const long = ctx.newCase('long');
    long.clients = n;
    const longMs = cycle + Math.max(1000, cycle / 2);
    long.details.heartbeat = hb;
    long.details.blackholeMs = longMs;
    if (longMs > 120000) return long.skip(`ping interval + timeout ${fmtMs(cycle)} too long for a bounded run; use short --ping-interval/--ping-timeout`).finish();
    if (!long.check('all clients ready before the fault', await fleet.waitReady({ timeoutMs: 10000 }), n, fleet.readyCount())) return long.finish();

    ctx.progress(`long: blackhole ${fmtMs(longMs)}`);
    t0 = now();
    proxy.blackhole();
    await sleep(longMs);
    const tu = now();
    const before = fleet.records().map((c) => c.disconnects.find((d) => d.t >= t0)).filter(Boolean);
    proxy.unblock();
    const timeouts = before.filter((d) => d.reason === 'ping timeout').length;
    long.check('every client notices while the link is dead, by ping timeout', timeouts === n, n,
      `${timeouts} (${before.length} disconnected before unblock; reasons ${JSON.stringify(Object.fromEntries(before.map((d) => [d.reason, before.filter((x) => x.reason === d.reason).length])))})`);
    const detect = before.map((d) => d.t - t0);
    long.details.detectP50Ms = percentile(detect, 50);
    long.details.detectMaxMs = detect.length ? Math.max(...detect) : null;

    await fleet.waitBack(t0, { timeoutMs: 30000 + ctx.opts.reconnectDelayMax, onTick: backTicker(ctx, long, fleet, t0) });
    const s = reconnectChecks(long, fleet.records(), t0, tu);
    long.details.timingsFrom = 'unblock';
    if (s.back === n) await membershipCheck(ctx, long, fleet, url);
    return long.finish();
  },
};
