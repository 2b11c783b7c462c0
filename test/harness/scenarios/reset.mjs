// reset: the proxy between clients and server resets every connection (TCP RST both ways);
// new connections go through at once. Every client must come back and be in its room again.
import { now } from '../clock.mjs';
import { backTicker, connectAndBaseline, connectErrorSummary, membershipCheck, reconnectChecks } from './common.mjs';

export default {
  describe: 'every connection reset by the proxy: all come back, rooms restored',
  timeoutMs: 90000,
  async run(ctx) {
    const r = ctx.newCase('rst');
    const n = ctx.opts.clients || 50;
    r.clients = n;
    const { url } = await ctx.target([], { name: 'reset' });
    const proxy = await ctx.proxy(url);
    const fleet = ctx.fleet({ url: proxy.url, count: n, roomCount: Math.max(1, Math.ceil(n / 5)), roomPrefix: 'reset' });
    if (!(await connectAndBaseline(ctx, r, fleet, url))) return r.finish();
    const t0 = now();
    r.details.connectionsReset = proxy.resetAll();
    await fleet.waitBack(t0, { timeoutMs: 30000 + ctx.opts.reconnectDelayMax, onTick: backTicker(ctx, r, fleet, t0) });
    const s = reconnectChecks(r, fleet.records(), t0);
    r.details.connectErrors = connectErrorSummary(fleet.records(), t0);
    if (s.back === n) await membershipCheck(ctx, r, fleet, url);
    return r.finish();
  },
};
