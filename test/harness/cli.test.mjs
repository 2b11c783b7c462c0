// The roomcast-harness command line: usage errors, --url and --spawn runs, JSON and table
// output, and a non-zero exit when a server breaks a scenario. Uses the Node reference server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerProcess } from './spawn.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const cli = path.join(here, 'cli.mjs');
const reference = path.join(root, 'test/reference/server.mjs');
const haveReference = fs.existsSync(reference);

function run(args, timeoutMs = 120000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const servers = [];
after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
});

test('usage errors exit 2 with the usage text', async () => {
  const none = await run(['--url', 'http://127.0.0.1:1']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--scenario is required/);
  assert.match(none.stderr, /usage: roomcast-harness/);
  const both = await run(['--url', 'http://127.0.0.1:1', '--spawn', 'x', '--scenario', 'reset']);
  assert.equal(both.code, 2);
  const unknown = await run(['--url', 'http://127.0.0.1:1', '--scenario', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown scenario "nope"/);
});

test('--url runs what needs no process control, skips the rest, prints JSON', { skip: !haveReference && 'no test/reference/server.mjs' }, async () => {
  const s = new ServerProcess({ command: `node ${reference}`, name: 'cli-url' });
  servers.push(s);
  await s.start();
  const res = await run(['--url', s.url, '--scenario', 'reset,restart', '--clients', '8', '--json']);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.ok, true);
  const byName = Object.fromEntries(out.results.map((r) => [`${r.scenario}/${r.case}`, r]));
  assert.equal(byName['reset/rst'].status, 'pass');
  assert.equal(byName['reset/rst'].clients, 8);
  assert.ok(byName['reset/rst'].timings.allBackMs > 0);
  assert.equal(byName['restart/all'].status, 'skip');
  assert.match(byName['restart/all'].reason, /needs --spawn/);
});

test('--spawn prints a table and exits 0 when all pass', { skip: !haveReference && 'no test/reference/server.mjs' }, async () => {
  const res = await run(['--spawn', `node ${reference}`, '--scenario', 'reset', '--clients', '5', '--latency', '20']);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /^scenario\s+case\s+result\s+clients\s+first back\s+all back\s+p50\s+p99\s+notes$/m);
  assert.match(res.stdout, /^reset\s+rst\s+PASS\s+5\s/m);
  assert.match(res.stdout, /^1 passed, 0 failed$/m);
  assert.equal(res.stderr, '', 'no progress line when stderr is not a TTY');
});

test('a server without connection state recovery fails the recovery scenario (exit 1)', { skip: !haveReference && 'no test/reference/server.mjs' }, async () => {
  const res = await run(['--spawn', `node ${reference} --recovery-window 0`, '--scenario', 'recovery', '--json']);
  assert.equal(res.code, 1, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.ok, false);
  const short = out.results.find((r) => r.case === 'reset-short');
  assert.equal(short.status, 'fail');
  const failed = short.checks.filter((c) => !c.ok).map((c) => c.name);
  assert.ok(failed.includes('socket.recovered === true'), failed.join('; '));
  assert.ok(short.serverLog && Object.values(short.serverLog).flat().some((l) => l.includes('listening')), 'failure carries the server log');
});

test('a server that dies at start fails with its exit status', async () => {
  // {port} in the command: substituted, and no --addr appended (node would reject it).
  const res = await run(['--spawn', `node -e "process.exit(3)" {port}`, '--scenario', 'reset']);
  assert.equal(res.code, 1);
  assert.match(res.stdout, /FAIL reset\/rst: reset exited before it was ready \(code 3/);
});
