// A TCP proxy (node:net) between clients and a server that can misbehave on purpose:
//   blackhole()   stop forwarding in both directions without closing anything (the bytes wait
//                 in kernel buffers, as with a dead link TCP would retransmit into); closes and
//                 errors of either side are held back too, so only timeouts can notice;
//   unblock()     forward again, including whatever was held back;
//   resetAll()    destroy every proxied connection with a TCP RST on both sides;
//   down()/up()   resetAll() and refuse (RST) every new connection until up();
//   setLatency(ms) delay every chunk by ms in each direction, order kept.
import net from 'node:net';
import { pickPort } from './ports.mjs';

export class Proxy {
  constructor({ targetHost = '127.0.0.1', targetPort, host = '127.0.0.1', port } = {}) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
    this.host = host;
    this.port = port;
    this.latencyMs = 0;
    this.blackholed = false;
    this.refusing = false;
    this.pairs = new Set();
    this.accepted = 0;
    this.server = null;
  }

  get url() {
    return `http://${this.host}:${this.port}`;
  }

  async start() {
    this.port = this.port || (await pickPort());
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => this._accept(c));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this;
  }

  _accept(client) {
    this.accepted++;
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    upstream.pause();
    const pair = { client, upstream, held: [], flushers: [], closed: false };
    this.pairs.add(pair);
    this._pipe(pair, client, upstream);
    this._pipe(pair, upstream, client);
    if (!this.blackholed) {
      client.resume();
      upstream.resume();
    }
  }

  // Forwards from -> to through a FIFO so added latency never reorders chunks.
  _pipe(pair, from, to) {
    const queue = [];
    let timer = null;
    const flush = () => {
      timer = null;
      if (this.blackholed || pair.closed) return;
      const t = Date.now();
      while (queue.length && queue[0].due <= t) {
        const item = queue.shift();
        if (to.destroyed) continue;
        if (item.end) to.end();
        else if (!to.write(item.data)) {
          from.pause();
          to.once('drain', () => {
            if (!this.blackholed && !pair.closed) from.resume();
          });
        }
      }
      if (queue.length) timer = setTimeout(flush, queue[0].due - t);
    };
    pair.flushers.push(() => {
      if (!timer) flush();
    });
    const push = (item) => {
      queue.push({ ...item, due: Date.now() + this.latencyMs });
      if (!timer && !this.blackholed) timer = setTimeout(flush, this.latencyMs);
    };
    from.on('data', (data) => push({ data }));
    from.on('end', () => push({ end: true }));
    from.on('error', () => {
      // A reset or refused upstream resets the other side; held back while blackholed.
      const act = () => this._closePair(pair, true);
      if (this.blackholed) pair.held.push(act);
      else act();
    });
    from.on('close', () => {
      if (from.destroyed && to.destroyed) this.pairs.delete(pair);
    });
  }

  _closePair(pair, reset) {
    if (pair.closed) return;
    pair.closed = true;
    this.pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      if (reset) s.resetAndDestroy();
      else s.end(() => s.destroy());
    }
  }

  setLatency(ms) {
    this.latencyMs = Math.max(0, ms);
  }

  blackhole() {
    this.blackholed = true;
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream.pause();
    }
  }

  unblock() {
    this.blackholed = false;
    for (const p of [...this.pairs]) {
      const held = p.held.splice(0);
      for (const f of p.flushers || []) f();
      if (!p.closed) {
        p.client.resume();
        p.upstream.resume();
      }
      for (const act of held) act();
    }
  }

  /** RST every current connection (both sides). Returns how many pairs were reset. */
  resetAll() {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this._closePair(p, true);
    return n;
  }

  down() {
    this.refusing = true;
    return this.resetAll();
  }

  up() {
    this.refusing = false;
  }

  get connections() {
    return this.pairs.size;
  }

  async close() {
    this.refusing = true;
    this.blackholed = false;
    this.resetAll();
    if (this.server) {
      const s = this.server;
      this.server = null;
      await new Promise((resolve) => s.close(() => resolve()));
    }
  }
}
