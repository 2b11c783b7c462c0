// A private redis-server for the harness: its own port, no persistence, killed at cleanup.
import net from 'node:net';
import { spawnChild, stopChild } from './spawn.mjs';
import { pickPort } from './ports.mjs';
import { now, sleep } from './clock.mjs';

/** PING over a raw socket; true on +PONG. */
export function ping(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (v) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}

export class RedisServer {
  constructor({ bin = 'redis-server', port } = {}) {
    this.bin = bin;
    this.port = port;
    this.proc = null;
    this.lines = [];
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 10000) {
    this.port = this.port || (await pickPort());
    this.proc = spawnChild([this.bin, '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      onLine: (l) => {
        this.lines.push(l);
        if (this.lines.length > 200) this.lines.shift();
      },
    });
    const deadline = now() + timeoutMs;
    let exit = null;
    this.proc.exited.then((e) => {
      exit = e;
    });
    while (now() < deadline) {
      if (exit) throw new Error(`redis-server exited (code ${exit.code}${exit.error ? `, ${exit.error}` : ''}): ${this.lines.slice(-3).join(' | ')}`);
      if (await ping(this.port)) return this;
      await sleep(50);
    }
    await this.stop('SIGKILL');
    throw new Error(`redis-server on ${this.port} not ready after ${timeoutMs}ms`);
  }

  async stop(signal = 'SIGTERM') {
    if (!this.proc) return null;
    const p = this.proc;
    this.proc = null;
    return stopChild(p, signal, 5000);
  }
}
