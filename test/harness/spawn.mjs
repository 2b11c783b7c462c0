// Child processes the harness owns: the server under test (started, stopped with a chosen
// signal, restarted on the same port) and anything else it spawns (redis-server). Every child
// is registered and killed when the harness exits, whatever the path out.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from './http.mjs';
import { now, sleep } from './clock.mjs';
import { pickPort } from './ports.mjs';

const live = new Set();

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

/** Registers a child started elsewhere (e.g. fork) so that it dies with the harness. */
export function track(child) {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Splits a command line into words; single and double quotes group, no other shell syntax. */
export function splitCommand(cmd) {
  const words = [];
  let cur = '';
  let quote = null;
  let has = false;
  for (const ch of cmd) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
    }
  }
  if (quote) throw new Error(`unbalanced quote in command: ${cmd}`);
  if (has || cur) words.push(cur);
  return words;
}

/**
 * Spawns `words` in its own process group (so signals reach the whole tree, e.g. `go run`).
 * Output lines go to onLine(line, stream) and, with logFile, to that file.
 */
export function spawnChild(words, { onLine, logFile, env, cwd } = {}) {
  const [cmd, ...args] = words;
  const child = spawn(cmd === 'node' ? process.execPath : cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      live.delete(child);
      resolve({ code: null, signal: null, error: err.message });
    });
  });
  const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
  for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (log) log.write(`${name}: ${line}\n`);
        if (onLine) onLine(line, name);
      }
    });
    stream.on('end', () => {
      if (buf) {
        if (log) log.write(`${name}: ${buf}\n`);
        if (onLine) onLine(buf, name);
      }
      buf = '';
    });
  }
  exited.then(() => log && log.end());
  return { child, exited };
}

/**
 * Stops a child: sends `signal` to its group, waits up to graceMs, then SIGKILL.
 * Resolves to { code, signal, killed (true when SIGKILL had to follow), tookMs }.
 */
export async function stopChild({ child, exited }, signal = 'SIGTERM', graceMs = 15000) {
  const t = now();
  if (child.exitCode !== null || child.signalCode !== null) return { ...(await exited), killed: false, tookMs: 0 };
  killGroup(child, signal);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    killGroup(child, 'SIGKILL');
  }, graceMs);
  const res = await exited;
  clearTimeout(timer);
  // Make sure nothing of the group outlives its leader.
  killGroup(child, 'SIGKILL');
  return { ...res, killed: killed && signal !== 'SIGKILL', tookMs: now() - t };
}

/** A server under test: `command` plus --addr 127.0.0.1:PORT (or {port} substituted) plus extra flags. */
export class ServerProcess {
  constructor({ command, args = [], port, name = 'server', logDir, readyTimeoutMs = 15000 }) {
    this.command = command;
    this.args = args;
    this.port = port;
    this.name = name;
    this.logDir = logDir;
    this.readyTimeoutMs = readyTimeoutMs;
    this.lines = [];
    this.proc = null;
    this.starts = 0;
    this.addr = null;
  }

  get url() {
    return `http://${this.addr || `127.0.0.1:${this.port}`}`;
  }

  words() {
    const addr = `127.0.0.1:${this.port}`;
    const words = splitCommand(this.command);
    const hasPlaceholder = words.some((w) => w.includes('{port}') || w.includes('{addr}'));
    const base = words.map((w) => w.replaceAll('{port}', String(this.port)).replaceAll('{addr}', addr));
    return hasPlaceholder ? [...base, ...this.args] : [...base, '--addr', addr, ...this.args];
  }

  /** The last n output lines (stdout and stderr interleaved as read). */
  tail(n = 30) {
    return this.lines.slice(-n);
  }

  _line(line) {
    this.lines.push(line);
    if (this.lines.length > 500) this.lines.splice(0, this.lines.length - 500);
    if (this._onListening && line.includes('"listening"')) {
      try {
        const j = JSON.parse(line);
        if (j.msg === 'listening' && j.addr) this._onListening(j.addr);
      } catch {
        // not JSON: ignore
      }
    }
  }

  /** Starts the process and resolves once it is ready; rejects (with the log tail) if it exits first. */
  async start() {
    this.port = this.port || (await pickPort());
    this.starts++;
    const words = this.words();
    this.lines.push(`# ${this.name} start #${this.starts}: ${words.join(' ')}`);
    const logFile = this.logDir ? path.join(this.logDir, `${this.name}.log`) : undefined;
    this.proc = spawnChild(words, { onLine: (l) => this._line(l), logFile });
    const t0 = now();
    let listening = null;
    const listened = new Promise((resolve) => {
      this._onListening = (addr) => {
        listening = addr;
        resolve(addr);
      };
    });
    const proc = this.proc;
    let exit = null;
    proc.exited.then((e) => {
      exit = e;
    });
    const deadline = t0 + this.readyTimeoutMs;
    const healthz = async () => {
      try {
        const res = await request('GET', `http://127.0.0.1:${this.port}/healthz`, { timeoutMs: 500 });
        return res.status === 200;
      } catch {
        return false;
      }
    };
    // Readiness: the "listening" log line, or /healthz answering 200, whichever comes first.
    for (;;) {
      if (listening) break;
      if (exit) {
        const err = new Error(`${this.name} exited before it was ready (code ${exit.code}, signal ${exit.signal}${exit.error ? `, ${exit.error}` : ''})`);
        err.exit = exit;
        err.logTail = this.tail(20);
        throw err;
      }
      if (now() > deadline) {
        await stopChild(proc, 'SIGKILL');
        const err = new Error(`${this.name} not ready after ${this.readyTimeoutMs}ms`);
        err.logTail = this.tail(20);
        throw err;
      }
      if (await healthz()) break;
      await Promise.race([listened, sleep(100)]);
    }
    this._onListening = null;
    if (listening) this.addr = listening.replace(/^\[?::\]?:/, '127.0.0.1:').replace(/^0\.0\.0\.0:/, '127.0.0.1:');
    this.readyMs = now() - t0;
    return this;
  }

  async stop(signal = 'SIGTERM', graceMs = 15000) {
    if (!this.proc) return null;
    const res = await stopChild(this.proc, signal, graceMs);
    this.lines.push(`# ${this.name} stopped by ${signal}: code ${res.code} signal ${res.signal}${res.killed ? ' (SIGKILL after grace)' : ''}`);
    return res;
  }
}
