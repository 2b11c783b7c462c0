// Summaries of per-client timelines after a fault.

/** Nearest-rank percentile of a numeric array (p in 0..100); null when empty. */
export function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function histogram(items) {
  const h = {};
  for (const k of items) h[k] = (h[k] || 0) + 1;
  return h;
}

/**
 * For each client record (see fleet.mjs: disconnects[{t,reason}], readies[t], connects[{t,recovered}])
 * finds its first disconnect at or after t0 and its first ready (connected, rooms joined or
 * recovered) after that disconnect. `from` is the instant the "first/all back" timings count from
 * (the fault, or the end of a blackhole).
 */
export function reconnectStats(records, t0, from = t0) {
  const per = [];
  const backAt = [];
  const reasons = [];
  let disconnected = 0;
  let back = 0;
  let recovered = 0;
  const notBack = [];
  const downAt = [];
  for (const r of records) {
    const d = r.disconnects.find((x) => x.t >= t0);
    if (!d) continue;
    disconnected++;
    downAt.push(d.t);
    reasons.push(d.reason);
    const ready = r.readies.find((t) => t > d.t);
    if (ready === undefined) {
      notBack.push(r.idx);
      continue;
    }
    back++;
    per.push(ready - d.t);
    backAt.push(ready);
    const c = [...r.connects].reverse().find((x) => x.t <= ready && x.t > d.t);
    if (c && c.recovered) recovered++;
  }
  const firstBack = backAt.length ? Math.min(...backAt) : null;
  const lastBack = backAt.length ? Math.max(...backAt) : null;
  return {
    clients: records.length,
    disconnected,
    back,
    recovered,
    rejoined: back - recovered,
    notBack: notBack.slice(0, 20),
    reasons: histogram(reasons),
    firstReconnectMs: firstBack === null ? null : firstBack - from,
    allBackMs: back === records.length && lastBack !== null ? lastBack - from : null,
    p50Ms: percentile(per, 50),
    p99Ms: percentile(per, 99),
    maxMs: per.length ? Math.max(...per) : null,
    disconnectSpreadMs: downAt.length ? Math.max(...downAt) - Math.min(...downAt) : null,
    firstBackAt: firstBack,
    lastBackAt: lastBack,
  };
}

/** Connections per second between the first and the last timestamp, and the busiest 1 s window. */
export function rateStats(times) {
  if (times.length < 2) return { count: times.length, perSecond: null, peak1s: times.length };
  const sorted = [...times].sort((a, b) => a - b);
  const span = (sorted[sorted.length - 1] - sorted[0]) / 1000;
  let peak = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return { count: sorted.length, spanS: span, perSecond: span > 0 ? sorted.length / span : null, peak1s: peak };
}
