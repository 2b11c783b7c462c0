// Spawns the server under test and waits for its "listening" log line.
//
// TARGET=roomcast (default): bin/roomcast serve --addr 127.0.0.1:0 --log-level debug ...args
// TARGET=reference:          node test/reference/server.mjs --addr 127.0.0.1:0 ...args
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const TARGET = process.env.TARGET ?? "roomcast";

const MAX_LOG_LINES = 3000;

// Servers still running; killed if this test process ends without stopping them.
const live = new Set();
process.on("exit", () => { for (const p of live) p.kill("SIGKILL"); });
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    for (const p of live) p.kill("SIGKILL");
    process.exit(128 + (sig === "SIGINT" ? 2 : 15));
  });
}

function command(args) {
  if (TARGET === "roomcast") {
    const bin = path.join(ROOT, "bin", "roomcast");
    if (!existsSync(bin)) throw new Error(`${bin} not found: run \`make build\` first (or set TARGET=reference)`);
    return [bin, ["serve", "--addr", "127.0.0.1:0", "--log-level", "debug", ...args]];
  }
  if (TARGET === "reference") {
    return [process.execPath, [path.join(ROOT, "test/reference/server.mjs"), "--addr", "127.0.0.1:0", ...args]];
  }
  throw new Error(`unknown TARGET ${JSON.stringify(TARGET)} (want roomcast or reference)`);
}

/**
 * Starts the server under test with extra flags `args`.
 * Resolves to {url, addr, port, proc, stop(signal), logs(), tail(n), exited}.
 */
export async function startServer(args = [], { env = {}, startTimeout = 10_000 } = {}) {
  const [cmd, argv] = command(args);
  // Only the flags given here configure the server: drop inherited ROOMCAST_* variables.
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ROOMCAST_")));
  const proc = spawn(cmd, argv, { cwd: ROOT, env: { ...baseEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  live.add(proc);

  const lines = [];
  let dropped = 0; // lines pushed out of the ring; dropped + lines.length = lines seen
  const record = (stream, line) => {
    lines.push(`[${stream}] ${line}`);
    if (lines.length > MAX_LOG_LINES) { lines.shift(); dropped++; }
  };
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on("exit", (code, signal) => { live.delete(proc); exitInfo = { code, signal }; resolve(exitInfo); });
  });

  const listening = new Promise((resolve, reject) => {
    const onLine = (stream) => (line) => {
      record(stream, line);
      if (line.includes('"msg":"listening"')) {
        try {
          const addr = JSON.parse(line).addr;
          if (typeof addr === "string" && addr) resolve(addr);
        } catch { /* keep waiting for a parseable line */ }
      }
    };
    readline.createInterface({ input: proc.stdout }).on("line", onLine("stdout"));
    readline.createInterface({ input: proc.stderr }).on("line", onLine("stderr"));
    proc.on("error", reject);
    exited.then((e) => reject(new Error(`server exited before listening (code ${e.code}, signal ${e.signal})`)));
    setTimeout(() => reject(new Error(`no "listening" log line within ${startTimeout} ms`)), startTimeout).unref();
  });

  const server = {
    proc,
    exited,
    cmdline: [cmd, ...argv].join(" "),
    logs: () => (dropped ? `... ${dropped} earlier lines dropped ...\n` : "") + lines.join("\n"),
    tail: (n = 200) => lines.slice(-n).join("\n"),
    /** A position in the log, for since(). */
    mark: () => dropped + lines.length,
    /** The lines logged after `mark` (at most the last `n`). */
    since(mark, n = 250) {
      const from = Math.max(0, mark - dropped);
      const out = lines.slice(from);
      const skipped = out.length > n ? out.length - n : 0;
      return (skipped || mark < dropped ? `... earlier lines omitted ...\n` : "") + out.slice(skipped).join("\n");
    },
    get exitInfo() { return exitInfo; },
    /** Sends `signal`, waits up to `timeout` ms for exit, then SIGKILLs. */
    async stop(signal = "SIGTERM", timeout = 5000) {
      if (exitInfo) return exitInfo;
      proc.kill(signal);
      let t;
      const killed = new Promise((resolve) => {
        t = setTimeout(() => { proc.kill("SIGKILL"); resolve(); }, timeout);
      });
      await Promise.race([exited, killed]);
      clearTimeout(t);
      return exited;
    },
  };

  try {
    const addr = await listening;
    const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
    return Object.assign(server, { addr, port, url: `http://${addr}` });
  } catch (e) {
    await server.stop("SIGKILL", 1000);
    e.message += `\ncommand: ${server.cmdline}\nserver output:\n${server.tail(100)}`;
    throw e;
  }
}
