// Time helpers shared by the harness: one clock (epoch ms with sub-ms precision,
// comparable across the worker processes), bounded waits and Go-style durations.
import { setTimeout as delay } from 'node:timers/promises';

/** Milliseconds since the epoch, fractional; the same basis in every process. */
export function now() {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms) {
  return delay(Math.max(0, ms));
}

/**
 * Polls cond() every stepMs until it returns a truthy value or timeoutMs passes.
 * Returns the last value of cond() (falsy on timeout). Never loops unbounded.
 */
export async function waitFor(cond, { timeoutMs, stepMs = 50, onTick } = {}) {
  const deadline = now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (onTick) onTick();
    if (now() >= deadline) return v;
    await sleep(Math.min(stepMs, Math.max(1, deadline - now())));
  }
}

const UNITS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Parses a Go duration ("500ms", "1m30s", "0") or a number of milliseconds into ms. */
export function parseDuration(v) {
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let m;
  let consumed = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || consumed === 0) throw new Error(`bad duration: ${v}`);
  return total;
}

/** Formats ms for humans: "850ms", "2.41s", "—" for null. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}
