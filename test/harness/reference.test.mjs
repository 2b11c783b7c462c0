// Scenarios 1, 2 and 4 against the Node socket.io 4.8 reference hub (test/reference/server.mjs,
// connection state recovery on), spawned and restarted by the harness.
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarioTests } from './testing.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const server = path.join(root, 'test/reference/server.mjs');

if (!fs.existsSync(server)) {
  test('reference server scenarios', (t) => t.skip(`${server} not found`));
} else {
  scenarioTests(test, () => `node ${server}`, ['restart', 'blackhole', 'recovery']);
}
