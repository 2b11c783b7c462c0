// Runs scenarios: gives each one a context that owns everything it starts (servers, proxies,
// clients, redis, workers) and tears it all down afterwards, bounds it in time, and collects
// its cases' results.
import fs from 'node:fs';
import { now, sleep } from './clock.mjs';
import { Fleet, ioOptions } from './fleet.mjs';
import { Proxy } from './proxy.mjs';
import { setApiKey } from './http.mjs';
import { ServerProcess } from './spawn.mjs';
import restart from './scenarios/restart.mjs';
import blackhole from './scenarios/blackhole.mjs';
import reset from './scenarios/reset.mjs';
import recovery from './scenarios/recovery.mjs';
import storm from './scenarios/storm.mjs';
import redisOutage from './scenarios/redis-outage.mjs';

/** name → { run(ctx), needsSpawn, timeoutMs, describe } */
export const SCENARIOS = {
  restart,
  blackhole,
  reset,
  recovery,
  storm,
  'redis-outage': redisOutage,
};

export const DEFAULTS = {
  reconnectDelay: 1000,
  reconnectDelayMax: 5000,
  randomization: 0.5,
  connectTimeout: 20000,
  latency: 0,
  pingInterval: '500ms',
  pingTimeout: '500ms',
  connectRate: 200,
  workers: 4,
  messages: 20,
};

/** One row of the report: a case of a scenario, its checks, timings and details. */
export class CaseResult {
  constructor(scenario, name) {
    this.scenario = scenario;
    this.case = name;
    this.status = null;
    this.reason = undefined;
    this.clients = undefined;
    this.timings = {};
    this.checks = [];
    this.details = {};
    this.servers = [];
    this.startedAt = now();
  }

  /** Records a check; `ok` decides pass/fail of the case. */
  check(name, ok, expected, got) {
    this.checks.push({ name, ok: Boolean(ok), expected, got });
    return Boolean(ok);
  }

  skip(reason) {
    this.status = 'skip';
    this.reason = reason;
    return this;
  }

  unsupported(reason) {
    this.status = 'unsupported';
    this.reason = reason;
    return this;
  }

  fail(reason) {
    this.status = 'fail';
    this.reason = reason;
    return this;
  }

  finish() {
    if (!this.status) {
      const bad = this.checks.filter((c) => !c.ok);
      this.status = this.checks.length && !bad.length ? 'pass' : 'fail';
      if (!this.checks.length) this.reason ||= 'no checks ran';
    }
    this.durationMs = Math.round(now() - this.startedAt);
    for (const [k, v] of Object.entries(this.timings)) if (typeof v === 'number') this.timings[k] = Math.round(v);
    return this;
  }

  toJSON() {
    const { startedAt, servers, ...rest } = this;
    return rest;
  }
}

export class Context {
  constructor(scenario, opts, { onProgress } = {}) {
    this.scenario = scenario;
    this.opts = { ...DEFAULTS, ...opts };
    this.onProgress = onProgress;
    this.cleanups = [];
    this.servers = [];
    this.results = [];
    this.closed = false;
  }

  /** The transport list / backoff settings the CLI was given, with per-scenario overrides. */
  ioOpts(overrides = {}) {
    return ioOptions({ ...this.opts, ...overrides });
  }

  progress(text) {
    if (this.onProgress) this.onProgress(`${this.scenario}: ${text}`);
  }

  defer(fn) {
    this.cleanups.push(fn);
  }

  guard() {
    if (this.closed) throw new Error('scenario was stopped (time limit)');
  }

  newCase(name) {
    const r = new CaseResult(this.scenario, name);
    this.results.push(r);
    return r;
  }

  /** Starts a server from --spawn with extra flags; it is killed at cleanup. */
  async server(extraArgs = [], { name = 'server', port } = {}) {
    this.guard();
    if (!this.opts.spawn) throw new Error('this needs --spawn');
    const s = new ServerProcess({ command: this.opts.spawn, args: extraArgs, name, port, logDir: this.opts.logDir });
    this.servers.push(s);
    const open = this.results.findLast((r) => !r.status);
    if (open) open.servers.push(s);
    this.defer(() => s.stop('SIGKILL'));
    await s.start();
    return s;
  }

  /**
   * Where the clients go: a server spawned with extraArgs (when --spawn), else --url.
   * Returns { url, server } (server null with --url).
   */
  async target(extraArgs = [], opts = {}) {
    if (this.opts.spawn) {
      const server = await this.server(extraArgs, opts);
      return { url: server.url, server };
    }
    return { url: this.opts.url, server: null };
  }

  async proxy(targetUrl) {
    this.guard();
    const u = new URL(targetUrl);
    const p = new Proxy({ targetHost: u.hostname, targetPort: Number(u.port) });
    this.defer(() => p.close());
    await p.start();
    p.setLatency(this.opts.latency || 0);
    return p;
  }

  fleet(params) {
    this.guard();
    const f = new Fleet({ ioOpts: this.ioOpts(), ...params });
    this.defer(() => f.close());
    return f;
  }

  /** The last lines of the given servers' output (for failure reports). */
  static logTail(servers, n = 25) {
    const out = {};
    for (const s of servers) out[s.name] = s.tail(n);
    return out;
  }

  async cleanup() {
    this.closed = true;
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort: keep closing the rest
      }
    }
    this.cleanups = [];
  }
}

/** Runs one scenario; always returns at least one finished CaseResult. */
export async function runScenario(name, opts = {}, hooks = {}) {
  const sc = SCENARIOS[name];
  if (!sc) throw new Error(`unknown scenario ${name} (known: ${Object.keys(SCENARIOS).join(', ')})`);
  const ctx = new Context(name, opts, hooks);
  setApiKey(ctx.opts.apiKey);
  if (sc.needsSpawn && !ctx.opts.spawn) {
    ctx.newCase('all').skip(`needs --spawn: ${sc.needsSpawn}`);
    return ctx.results.map((r) => r.finish());
  }
  if (ctx.opts.logDir) fs.mkdirSync(ctx.opts.logDir, { recursive: true });
  const limitMs = opts.timeoutMs || sc.timeoutMs || 120000;
  let timer;
  const limit = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), limitMs);
  });
  try {
    const out = await Promise.race([sc.run(ctx).then(() => 'done'), limit]);
    if (out === 'timeout') {
      const open = ctx.results.find((r) => !r.status) || ctx.newCase('timeout');
      open.fail(`scenario did not finish within ${Math.round(limitMs / 1000)}s`);
    }
  } catch (err) {
    const open = ctx.results.find((r) => !r.status) || ctx.newCase('error');
    open.fail(err.message);
    if (err.logTail) open.details.startLog = err.logTail;
  } finally {
    clearTimeout(timer);
    await ctx.cleanup();
    await sleep(50);
  }
  for (const r of ctx.results) {
    r.finish();
    // The servers this case started, else every server of the scenario.
    const servers = r.servers.length ? r.servers : ctx.servers;
    if (r.status === 'fail' && servers.length) r.serverLog = Context.logTail(servers);
  }
  return ctx.results;
}

/** Runs several scenarios one after the other. */
export async function runScenarios(names, opts = {}, hooks = {}) {
  const all = [];
  for (const name of names) {
    if (hooks.onStart) hooks.onStart(name);
    const rs = await runScenario(name, opts, hooks);
    all.push(...rs);
    if (hooks.onDone) hooks.onDone(name, rs);
  }
  return all;
}
