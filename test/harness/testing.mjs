// Helpers for the harness's own node:test files: run a scenario, fail with its failed checks
// and server log, and report timings as diagnostics (never asserted).
import assert from 'node:assert/strict';
import { runScenario } from './run.mjs';
import { fmtMs } from './clock.mjs';

function explain(r) {
  const lines = [`${r.scenario}/${r.case}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`];
  for (const c of r.checks.filter((x) => !x.ok)) lines.push(`  - ${c.name}: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(c.got)}`);
  for (const [name, tail] of Object.entries(r.serverLog || {})) {
    lines.push(`  ${name} log:`);
    for (const l of tail) lines.push(`    ${l.slice(0, 400)}`);
  }
  return lines.join('\n');
}

/** Runs a scenario and returns its cases by name, after asserting each named case passed. */
export async function runAndExpectPass(t, name, opts, caseNames) {
  const results = await runScenario(name, opts);
  const byCase = Object.fromEntries(results.map((r) => [r.case, r]));
  for (const r of results) {
    const tm = r.timings || {};
    t.diagnostic(`${r.scenario}/${r.case} ${r.status}: first back ${fmtMs(tm.firstReconnectMs)}, all back ${fmtMs(tm.allBackMs)}, p50 ${fmtMs(tm.p50Ms)}, p99 ${fmtMs(tm.p99Ms)}`);
  }
  assert.deepEqual(results.map((r) => r.case), caseNames, `cases run: ${results.map(explain).join('\n')}`);
  for (const r of results) assert.equal(r.status, 'pass', explain(r));
  return byCase;
}

export function range(a, b) {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

/**
 * Defines one node:test test per scenario in `names`, run against `spawn()` (a function, so the
 * command can be settled in a before() hook), each asserting the scenario's outcomes.
 */
export function scenarioTests(test, spawn, names, opts = {}) {
  const o = () => ({ spawn: spawn(), ...opts });
  const only = (n) => names.includes(n);

  if (only('restart')) test('restart: graceful and crash; every client back in its rooms', async (t) => {
    const c = await runAndExpectPass(t, 'restart', { clients: 30, ...o() }, ['graceful', 'crash']);
    for (const r of Object.values(c)) {
      assert.equal(r.clients, 30);
      assert.equal(r.details.recovered + r.details.rejoined, 30, 'every client back, recovered or re-joined');
      assert.notEqual(r.timings.allBackMs, null);
      assert.ok(r.checks.some((k) => k.name.startsWith('rooms restored') && k.ok), 'room membership probed after the restart');
    }
    assert.equal(c.crash.details.stop.exitSignal, 'SIGKILL');
  });

  if (only('blackhole')) test('blackhole: short one unnoticed, long one caught by ping timeout then reconnected', async (t) => {
    // 1s/1s rather than the CLI's 500ms/500ms: more slack for a loaded 2-core machine.
    const c = await runAndExpectPass(t, 'blackhole', { clients: 10, pingInterval: '1s', pingTimeout: '1s', ...o() }, ['short', 'long']);
    assert.equal(c.short.checks.find((k) => k.name === 'no client disconnects').got, 0);
    assert.deepEqual(c.long.details.disconnectReasons, { 'ping timeout': 10 });
    assert.equal(c.long.details.recovered + c.long.details.rejoined, 10);
  });

  if (only('reset')) test('reset: every connection reset by the proxy; all come back', async (t) => {
    const c = await runAndExpectPass(t, 'reset', { clients: 30, ...o() }, ['rst']);
    assert.equal(c.rst.details.connectionsReset >= 30, true, `reset ${c.rst.details.connectionsReset} connections`);
    assert.equal(c.rst.details.recovered + c.rst.details.rejoined, 30);
  });

  if (only('recovery')) test('recovery: within the window every missed message once and in order; after it a fresh session', async (t) => {
    const c = await runAndExpectPass(t, 'recovery', { messages: 20, ...o() }, ['reset-short', 'engine-close-short', 'long']);
    for (const name of ['reset-short', 'engine-close-short']) {
      assert.equal(c[name].details.recovered, true, `${name}: socket.recovered`);
      assert.equal(c[name].details.sidChanged, false, `${name}: same socket id`);
      assert.deepEqual(c[name].details.received, range(1, 25), `${name}: messages`);
    }
    assert.equal(c.long.details.recovered, false);
    assert.equal(c.long.details.sidChanged, true);
    assert.deepEqual(c.long.details.received, [1, 2, 3, 24, 25]);
  });

  if (only('storm')) test('storm: 2000 clients over 4 workers, SIGKILL + restart under --connect-rate 200', async (t) => {
    const c = await runAndExpectPass(t, 'storm', { clients: 2000, workers: 4, connectRate: 200, ...o() }, ['kill-restart']);
    const d = c['kill-restart'].details;
    t.diagnostic(`storm: sustained ${d.sustainedRate} conn/s by client clocks (busiest second ${d.peak1s}), server-side ${JSON.stringify(d.server)}, ${d.refused} refused attempts (${d.refused503} with 503)`);
    assert.equal(c['kill-restart'].details.recovered + c['kill-restart'].details.rejoined, 2000);
    assert.ok(d.refused503 > 0, 'the server refused excess handshakes with 503');
  });

  if (only('redis-outage')) test('redis-outage: clients stay, cross-node delivery resumes', async (t) => {
    const results = await runScenario('redis-outage', { clients: 10, ...o() });
    const [r] = results;
    if (r.status === 'unsupported') {
      t.skip(`server does not support the Redis adapter: ${r.reason}`);
      return;
    }
    assert.equal(r.status, 'pass', explain(r));
    t.diagnostic(`redis-outage: cross-node delivery back ${fmtMs(r.details.resumeMs)} after Redis restarted`);
    assert.notEqual(r.details.resumeMs, null);
  });
}
