// The fault-injecting TCP proxy on its own, against an echo server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Proxy } from './proxy.mjs';
import { now, sleep, waitFor } from './clock.mjs';

let echo;
let echoPort;
const sockets = new Set();

before(async () => {
  echo = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = echo.address().port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => echo.close(resolve));
});

async function withProxy(fn) {
  const p = new Proxy({ targetPort: echoPort });
  await p.start();
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => resolve(c));
    c.once('error', reject);
  });
}

function client(port) {
  return connect(port).then((c) => {
    const got = { data: '', error: null, closed: false };
    c.on('data', (d) => {
      got.data += d;
    });
    c.on('error', (e) => {
      got.error = e.code || e.message;
    });
    c.on('close', () => {
      got.closed = true;
    });
    return { c, got };
  });
}

test('forwards both ways, and latency delays each direction in order', async () => {
  await withProxy(async (p) => {
    const { c, got } = await client(p.port);
    c.write('a');
    assert.ok(await waitFor(() => got.data === 'a', { timeoutMs: 30000 }));
    p.setLatency(150);
    const t = now();
    c.write('b');
    c.write('c');
    assert.ok(await waitFor(() => got.data === 'abc', { timeoutMs: 30000 }));
    const rtt = now() - t;
    assert.ok(rtt >= 290, `round trip ${rtt}ms should include 2×150ms latency`);
    c.destroy();
  });
});

test('blackhole holds data without closing; unblock delivers it', async () => {
  await withProxy(async (p) => {
    const { c, got } = await client(p.port);
    p.blackhole();
    c.write('held');
    await sleep(300);
    assert.equal(got.data, '');
    assert.equal(got.closed, false);
    // A connection opened during the blackhole is held too.
    const late = await client(p.port);
    late.c.write('late');
    await sleep(200);
    assert.equal(late.got.data, '');
    p.unblock();
    assert.ok(await waitFor(() => got.data === 'held' && late.got.data === 'late', { timeoutMs: 30000 }));
    c.destroy();
    late.c.destroy();
  });
});

test('a close during the blackhole is held back until unblock', async () => {
  await withProxy(async (p) => {
    const { c, got } = await client(p.port);
    c.write('x');
    assert.ok(await waitFor(() => got.data === 'x', { timeoutMs: 30000 }));
    p.blackhole();
    for (const s of sockets) s.resetAndDestroy();
    await sleep(300);
    assert.equal(got.closed, false, 'client must not learn of the server side close while blackholed');
    p.unblock();
    assert.ok(await waitFor(() => got.closed, { timeoutMs: 30000 }));
  });
});

test('resetAll sends RST to clients; down() refuses new connections until up()', async () => {
  await withProxy(async (p) => {
    const { got } = await client(p.port);
    await waitFor(() => p.connections === 1, { timeoutMs: 30000 });
    assert.equal(p.resetAll(), 1);
    assert.ok(await waitFor(() => got.closed, { timeoutMs: 30000 }));
    assert.equal(got.error, 'ECONNRESET');

    p.down();
    // Reset right after the handshake: seen as a failed connect or as a reset just after it.
    const refused = await client(p.port).then(
      async ({ got: g }) => {
        await waitFor(() => g.closed, { timeoutMs: 30000 });
        return g.error;
      },
      (err) => err.code,
    );
    assert.equal(refused, 'ECONNRESET');
    p.up();
    const ok = await client(p.port);
    ok.c.write('back');
    assert.ok(await waitFor(() => ok.got.data === 'back', { timeoutMs: 30000 }));
    ok.c.destroy();
  });
});
