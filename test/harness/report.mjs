// Human output: one table per run, the failed checks under it, and a progress line on stderr
// (only when stderr is a TTY).
import { fmtMs } from './clock.mjs';

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function note(r) {
  if (r.reason) return r.reason;
  const d = r.details || {};
  const parts = [];
  if (d.sustainedRate) parts.push(`${d.sustainedRate.toFixed(0)} conn/s sustained${d.server ? ` (server-side ${d.server.perSecond}/s, busiest second ${d.server.peak1s})` : ''}`);
  if (d.refused !== undefined) parts.push(`${d.refused} refused (${d.refused503} with 503)`);
  else if (d.connectErrors && d.connectErrors.total) parts.push(`${d.connectErrors.total} failed attempts`);
  if (d.recovered !== undefined && typeof d.recovered === 'number') parts.push(`${d.recovered} recovered, ${d.rejoined} re-joined`);
  if (typeof d.recovered === 'boolean') parts.push(`recovered=${d.recovered}`);
  if (d.received && d.expected) parts.push(`${d.received.length}/${d.expected.length} msgs`);
  if (d.timingsFrom) parts.push(`timed from ${d.timingsFrom}`);
  if (d.stop && d.stop.signal === 'SIGTERM' && d.disconnectSpreadMs !== undefined) parts.push(`disconnects spread over ${fmtMs(d.disconnectSpreadMs)}`);
  if (d.detectP50Ms !== undefined && d.detectP50Ms !== null) parts.push(`detected p50 ${fmtMs(d.detectP50Ms)}`);
  if (d.resumeMs !== undefined && d.resumeMs !== null) parts.push(`cross-node back ${fmtMs(d.resumeMs)} after redis`);
  return parts.join('; ');
}

/** The results of a run as a text table plus the details of every failure. */
export function formatTable(results) {
  const head = ['scenario', 'case', 'result', 'clients', 'first back', 'all back', 'p50', 'p99', 'notes'];
  const rows = results.map((r) => [
    r.scenario,
    r.case,
    r.status.toUpperCase(),
    r.clients ?? '',
    fmtMs(r.timings?.firstReconnectMs),
    fmtMs(r.timings?.allBackMs),
    fmtMs(r.timings?.p50Ms),
    fmtMs(r.timings?.p99Ms),
    note(r),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  widths[widths.length - 1] = 0;
  const line = (cells) => cells.map((c, i) => pad(c, widths[i])).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w, i) => '-'.repeat(Math.max(w, head[i].length))))];
  for (const row of rows) out.push(line(row));
  for (const r of results.filter((x) => x.status === 'fail')) {
    out.push('', `FAIL ${r.scenario}/${r.case}${r.reason ? `: ${r.reason}` : ''}`);
    for (const c of r.checks.filter((x) => !x.ok)) out.push(`  - ${c.name}: expected ${fmtValue(c.expected)}, got ${fmtValue(c.got)}`);
    for (const [name, lines] of Object.entries(r.serverLog || {})) {
      if (!lines.length) continue;
      out.push(`  ${name} log (last ${lines.length} lines):`);
      for (const l of lines) out.push(`    ${l.length > 300 ? `${l.slice(0, 300)}…` : l}`);
    }
  }
  const counts = {};
  for (const r of results) counts[r.status] = (counts[r.status] || 0) + 1;
  out.push('', `${counts.pass || 0} passed, ${counts.fail || 0} failed${counts.skip ? `, ${counts.skip} skipped` : ''}${counts.unsupported ? `, ${counts.unsupported} unsupported` : ''}`);
  return out.join('\n');
}

function fmtValue(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A one-line progress display on stderr; a no-op unless stderr is a TTY. */
export class Progress {
  constructor(stream = process.stderr) {
    this.stream = stream;
    this.enabled = Boolean(stream.isTTY);
    this.last = 0;
    this.shown = false;
  }

  update(text) {
    if (!this.enabled) return;
    const t = Date.now();
    if (t - this.last < 100) return;
    this.last = t;
    const width = (this.stream.columns || 100) - 1;
    this.stream.write(`\r\x1b[K${text.slice(0, width)}`);
    this.shown = true;
  }

  clear() {
    if (this.enabled && this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}
