// Scenarios 1–6 against bin/roomcast (`make build`; built here with `go build` if missing),
// spawned, killed and restarted by the harness. redis-outage is skipped, with the reason,
// while the server rejects --adapter redis.
import { test, before } from 'node:test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarioTests } from './testing.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/roomcast');

before(() => {
  if (fs.existsSync(bin)) return;
  // Normally `make build` ran first; build just the server so this file also runs on its own.
  execFileSync('go', ['build', '-o', bin, './cmd/roomcast'], { cwd: root, stdio: 'inherit', timeout: 300000 });
});

scenarioTests(test, () => `${bin} serve`, ['restart', 'blackhole', 'reset', 'recovery', 'storm', 'redis-outage'], { drainWindow: '1s' });
