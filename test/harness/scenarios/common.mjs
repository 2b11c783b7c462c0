// Pieces several scenarios share.
import { fmtMs, now } from '../clock.mjs';
import { reconnectStats } from '../stats.mjs';

/** Connects a fleet, checks every client is ready and the rooms answer a probe; false if not. */
export async function connectAndBaseline(ctx, r, fleet, url, { timeoutMs = 30000 } = {}) {
  const ready = await fleet.connect({
    timeoutMs,
    onTick: () => ctx.progress(`${r.case}: ${fleet.readyCount()}/${fleet.count} connected`),
  });
  if (!r.check('all clients connect before the fault', ready, fleet.count, fleet.readyCount())) return false;
  const p = await fleet.probe(url);
  return r.check('baseline: every client gets an emit to its room exactly once', p.ok === p.total && p.dupes === 0 && p.wrong === 0,
    `${p.total}/${p.total}`, describeProbe(p));
}

export function describeProbe(p) {
  let s = `${p.ok}/${p.total}`;
  if (p.dupes) s += `, ${p.dupes} duplicated`;
  if (p.wrong) s += `, ${p.wrong} to a room the client is not in`;
  if (p.missing.length && p.ok !== p.total) s += ` (missing e.g. clients ${p.missing.slice(0, 5).join(',')})`;
  return s;
}

/** Fills the standard reconnect timings and checks of a case from the fleet's records. */
export function reconnectChecks(r, records, t0, from = t0) {
  const s = reconnectStats(records, t0, from);
  r.clients = records.length;
  r.timings = {
    firstReconnectMs: s.firstReconnectMs,
    allBackMs: s.allBackMs,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
  };
  r.details.disconnectReasons = s.reasons;
  r.details.disconnectSpreadMs = s.disconnectSpreadMs === null ? null : Math.round(s.disconnectSpreadMs);
  r.details.recovered = s.recovered;
  r.details.rejoined = s.rejoined;
  r.check('every client disconnected', s.disconnected === records.length, records.length, s.disconnected);
  r.check('every client reconnected (rooms joined or recovered)', s.back === records.length, records.length,
    s.back + (s.notBack.length ? ` (not back e.g. clients ${s.notBack.slice(0, 5).join(',')}; reasons ${JSON.stringify(s.reasons)})` : ''));
  return s;
}

/** Check that a post-fault probe reached every client exactly once. */
export async function membershipCheck(ctx, r, fleet, url, label = 'rooms restored: every client gets an emit to its room exactly once') {
  const p = await fleet.probe(url);
  r.check(label, p.ok === p.total && p.dupes === 0 && p.wrong === 0, `${p.total}/${p.total}`, describeProbe(p));
  return p;
}

/** Progress text while waiting for clients to come back. */
export function backTicker(ctx, r, fleet, t0) {
  return () => ctx.progress(`${r.case}: ${fleet.countBackSince(t0)}/${fleet.clients.length} back, ${fmtMs(now() - t0)}`);
}

/** Failed connection attempts at or after t0: how many, and how many of each error text. */
export function connectErrorSummary(records, t0) {
  let total = 0;
  const kinds = {};
  for (const c of records) {
    for (const e of c.errorLog) {
      if (e.t < t0) continue;
      total++;
      kinds[e.error] = (kinds[e.error] || 0) + 1;
    }
  }
  return { total, kinds };
}
