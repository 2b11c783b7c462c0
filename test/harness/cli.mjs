#!/usr/bin/env node
// roomcast-harness: reconnection scenarios against a Socket.IO server (roomcast or the Node
// reference). See usage() below.
import { parseArgs } from 'node:util';
import { DEFAULTS, SCENARIOS, runScenarios } from './run.mjs';
import { formatTable, Progress } from './report.mjs';
import { parseDuration } from './clock.mjs';

function usage() {
  const names = Object.entries(SCENARIOS).map(([k, v]) => `  ${k.padEnd(13)} ${v.describe}${v.needsSpawn ? ' (needs --spawn)' : ''}`).join('\n');
  return `usage: roomcast-harness (--url URL | --spawn "COMMAND") --scenario NAME[,NAME…|all] [options]

  --url URL              a running server; only scenarios that need no control of its process
  --spawn "COMMAND"      start the server: COMMAND gets --addr 127.0.0.1:PORT appended (or put
                         {port} / {addr} in it) plus the scenario's flags; it can be restarted
  --scenario NAMES       comma separated, or "all":
${names}
  --clients N            clients per scenario (defaults: restart/reset 50, blackhole 20, storm 2000, redis-outage 10)
  --json                 print the results as JSON on stdout
  --transports LIST      socket.io-client transports (default polling,websocket; storm websocket)
  --reconnect-delay MS   reconnectionDelay (default ${DEFAULTS.reconnectDelay})
  --reconnect-delay-max MS  reconnectionDelayMax (default ${DEFAULTS.reconnectDelayMax})
  --randomization F      randomizationFactor (default ${DEFAULTS.randomization})
  --latency MS           proxy latency each way (scenarios through the proxy)
  --ping-interval DUR    blackhole: server ping interval when spawned (default ${DEFAULTS.pingInterval})
  --ping-timeout DUR     blackhole: server ping timeout when spawned (default ${DEFAULTS.pingTimeout})
  --recovery-window DUR  recovery/long: spawned with this window (default 1s); with --url, the server's window
  --messages N           recovery: messages emitted while cut (default ${DEFAULTS.messages})
  --drain-window DUR     restart/graceful: pass --drain-window to the server
  --connect-rate N       storm: server --connect-rate (default ${DEFAULTS.connectRate}; 0 = unlimited)
  --workers N            storm: client processes (default ${DEFAULTS.workers})
  --redis-server PATH    redis-outage: redis-server binary (default redis-server)
  --api-key KEY          bearer key for POST /api/v1/emit (when the server has --api-key)
  --log-dir DIR          write each spawned process's output to DIR/NAME.log
  --timeout S            time limit per scenario, seconds

Exit code: 0 when nothing failed (skipped/unsupported do not fail), 1 on any failure, 2 on usage errors.`;
}

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      spawn: { type: 'string' },
      scenario: { type: 'string' },
      clients: { type: 'string' },
      json: { type: 'boolean' },
      transports: { type: 'string' },
      'reconnect-delay': { type: 'string' },
      'reconnect-delay-max': { type: 'string' },
      randomization: { type: 'string' },
      latency: { type: 'string' },
      'ping-interval': { type: 'string' },
      'ping-timeout': { type: 'string' },
      'recovery-window': { type: 'string' },
      messages: { type: 'string' },
      'drain-window': { type: 'string' },
      'connect-rate': { type: 'string' },
      workers: { type: 'string' },
      'redis-server': { type: 'string' },
      'api-key': { type: 'string' },
      'log-dir': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  return values;
}

function num(v, name, { min = 0 } = {}) {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${v}`);
  return n;
}

function dur(v, name) {
  if (v === undefined) return undefined;
  try {
    parseDuration(v);
  } catch {
    throw new Error(`--${name} must be a duration like 500ms or 2s, got ${v}`);
  }
  return v;
}

/** CLI values → harness options (throws with a usage message on bad input). */
export function toOptions(v) {
  if (!v.scenario) throw new Error('--scenario is required');
  if (!v.url === !v.spawn) throw new Error('give exactly one of --url and --spawn');
  if (v.url) {
    const u = new URL(v.url);
    if (u.protocol !== 'http:') throw new Error('--url must be http://');
  }
  const names = v.scenario === 'all' ? Object.keys(SCENARIOS) : v.scenario.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario "${n}" (known: ${Object.keys(SCENARIOS).join(', ')}, all)`);
  const opts = {
    url: v.url ? v.url.replace(/\/$/, '') : undefined,
    spawn: v.spawn,
    clients: num(v.clients, 'clients', { min: 1 }),
    transports: v.transports ? v.transports.split(',').map((s) => s.trim()) : undefined,
    reconnectDelay: num(v['reconnect-delay'], 'reconnect-delay'),
    reconnectDelayMax: num(v['reconnect-delay-max'], 'reconnect-delay-max'),
    randomization: num(v.randomization, 'randomization'),
    latency: num(v.latency, 'latency'),
    pingInterval: dur(v['ping-interval'], 'ping-interval'),
    pingTimeout: dur(v['ping-timeout'], 'ping-timeout'),
    recoveryWindow: dur(v['recovery-window'], 'recovery-window'),
    messages: num(v.messages, 'messages', { min: 1 }),
    drainWindow: dur(v['drain-window'], 'drain-window'),
    connectRate: num(v['connect-rate'], 'connect-rate'),
    workers: num(v.workers, 'workers', { min: 1 }),
    redisServer: v['redis-server'],
    apiKey: v['api-key'],
    logDir: v['log-dir'],
    timeoutMs: v.timeout !== undefined ? num(v.timeout, 'timeout', { min: 1 }) * 1000 : undefined,
  };
  for (const k of Object.keys(opts)) if (opts[k] === undefined) delete opts[k];
  return { names, opts };
}

async function main() {
  let parsed;
  try {
    const v = parse(process.argv.slice(2));
    if (v.help) {
      console.log(usage());
      return 0;
    }
    parsed = { ...toOptions(v), json: Boolean(v.json) };
  } catch (err) {
    console.error(`roomcast-harness: ${err.message}\n\n${usage()}`);
    return 2;
  }
  const progress = new Progress();
  const stop = () => {
    progress.clear();
    process.exit(130); // the exit hook in spawn.mjs kills every child
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const results = await runScenarios(parsed.names, parsed.opts, {
    onProgress: (text) => progress.update(text),
    onDone: () => progress.clear(),
  });
  progress.clear();
  const failed = results.some((r) => r.status === 'fail');
  if (parsed.json) {
    console.log(JSON.stringify({ ok: !failed, target: parsed.opts.url || parsed.opts.spawn, results }, null, 2));
  } else {
    console.log(formatTable(results));
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Sockets of closed clients can keep the loop alive for a moment; do not wait for them.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err) => {
    console.error(err.stack || err.message);
    process.exit(1);
  },
);
