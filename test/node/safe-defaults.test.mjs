// `roomcast serve` refuses an open admin surface off loopback (10.10, 10.12)
// and serves /metrics on --metrics-addr. roomcast only (flags of the binary).
import { describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { scenario, SAFETY_NET, TARGET } from "./lib/harness.mjs";
import { ROOT } from "./lib/server.mjs";
import { request } from "./lib/raw.mjs";

/** Runs `roomcast serve args` until it exits (bounded), returning its code and stderr. */
function runToExit(args, timeout = SAFETY_NET) {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ROOMCAST_")));
    const p = spawn(path.join(ROOT, "bin/roomcast"), ["serve", ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`roomcast serve ${args.join(" ")} still running after ${timeout} ms: ${stderr}`)); }, timeout);
    p.on("exit", (code) => { clearTimeout(t); resolve({ code, stderr }); });
  });
}

describe("safe defaults of roomcast serve", { skip: TARGET !== "roomcast" && "roomcast flags" }, () => {
  scenario("--addr 0.0.0.0 without --api-key refuses to start, naming the flags", async () => {
    const { code, stderr } = await runToExit(["--addr", "0.0.0.0:0"]);
    assert.equal(code, 1, stderr);
    for (const flag of ["--api-key", "--api-insecure", "--addr"]) assert.match(stderr, new RegExp(flag), stderr);
  });

  scenario("--pprof off loopback refuses to start, naming --pprof-addr", async () => {
    for (const args of [["--addr", "0.0.0.0:0", "--api-key", "k", "--pprof"], ["--metrics-addr", "0.0.0.0:0", "--pprof"]]) {
      const { code, stderr } = await runToExit(args);
      assert.equal(code, 1, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, /--pprof-addr/, stderr);
    }
  });

  scenario("--metrics-addr moves /metrics off the main listener", async (s) => {
    const srv = await s.server(["--metrics-addr", "127.0.0.1:0"]);
    // Logged before the main "listening" line, which startServer waited for.
    const line = srv.logs().split("\n").find((x) => x.includes('"msg":"metrics listening"'));
    assert.ok(line, `no "metrics listening" line: ${srv.logs()}`);
    const addr = JSON.parse(line.slice(line.indexOf("{"))).addr;
    assert.equal((await request(`http://${addr}/metrics`)).status, 200);
    assert.equal((await request(`${srv.url}/metrics`)).status, 404);
  });
});
