// restart: the server process goes away and comes back on the same port, gracefully (SIGTERM,
// the server drains) and by crash (SIGKILL). Every client must reconnect on its own and be in
// its room again (recovered by the server, or re-joined by the client on `connect`), checked
// with an HTTP emit to every room that every client must receive exactly once.
import { now } from '../clock.mjs';
import { backTicker, connectAndBaseline, connectErrorSummary, membershipCheck, reconnectChecks } from './common.mjs';

async function runCase(ctx, name, signal) {
  const r = ctx.newCase(name);
  const n = ctx.opts.clients || 50;
  r.clients = n;
  const extra = [];
  if (signal === 'SIGTERM' && ctx.opts.drainWindow) extra.push('--drain-window', ctx.opts.drainWindow);
  const server = await ctx.server(extra, { name: `restart-${name}` });
  const fleet = ctx.fleet({ url: server.url, count: n, roomCount: Math.max(1, Math.ceil(n / 5)), roomPrefix: `restart-${name}` });
  if (!(await connectAndBaseline(ctx, r, fleet, server.url))) return r.finish();

  ctx.progress(`${name}: ${signal}`);
  const t0 = now();
  const stop = await server.stop(signal, 20000);
  r.details.stop = { signal, exitCode: stop.code, exitSignal: stop.signal, tookMs: Math.round(stop.tookMs) };
  if (signal === 'SIGTERM') {
    r.check('server exits by itself after SIGTERM (no SIGKILL needed)', !stop.killed, 'exit', stop.killed ? 'SIGKILL after 20s' : `code ${stop.code}`);
  }
  await server.start();
  r.details.downMs = Math.round(now() - t0);

  await fleet.waitBack(t0, { timeoutMs: 30000 + ctx.opts.reconnectDelayMax, onTick: backTicker(ctx, r, fleet, t0) });
  const s = reconnectChecks(r, fleet.records(), t0);
  r.details.connectErrors = connectErrorSummary(fleet.records(), t0);
  if (s.back === n) await membershipCheck(ctx, r, fleet, server.url);
  fleet.close();
  await server.stop('SIGKILL');
  return r.finish();
}

export default {
  describe: 'server restart, graceful (SIGTERM) and crash (SIGKILL): all reconnect, rooms restored',
  needsSpawn: 'the harness restarts the server process',
  timeoutMs: 150000,
  async run(ctx) {
    await runCase(ctx, 'graceful', 'SIGTERM');
    await runCase(ctx, 'crash', 'SIGKILL');
  },
};
