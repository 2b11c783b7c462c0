// Load balancers for the cluster tests: renders the shipped configs in
// deploy/nginx and deploy/haproxy for nodes on loopback ports and runs nginx
// or HAProxy as an ordinary child process (no daemon, files in a temp dir).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import readline from "node:readline";
import { ROOT } from "../node/lib/server.mjs";
import { freePort } from "../node/lib/cluster.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const BALANCERS = ["nginx", "haproxy"];

/** Fills a template's markers; a {{debug}} line is kept (marker removed) only with debug. */
function fill(tmpl, vars, debug) {
  return tmpl.split("\n").flatMap((line) => {
    if (line.includes("{{debug}}")) return debug ? [line.replace("{{debug}}", "")] : [];
    const m = /^(\s*)\{\{(\w+)\}\}\s*$/.exec(line);
    if (m && Array.isArray(vars[m[2]])) return vars[m[2]].map((l) => m[1] + l);
    return [line.replace(/\{\{(\w+)\}\}/g, (_, k) => {
      if (!(k in vars)) throw new Error(`template marker {{${k}}} has no value`);
      return [].concat(vars[k]).join(" ");
    })];
  }).join("\n");
}

/**
 * The nginx config for `nodes` (ports on 127.0.0.1). `balance`: "tenant"
 * (the shipped consistent hash on tenant / sticky cookie) or "roundrobin".
 */
export function renderNginx({ prefix, port, nodes, balance = "tenant", debug = true }) {
  const tmpl = fs.readFileSync(path.join(ROOT, "deploy/nginx/roomcast.conf.tmpl"), "utf8");
  return fill(tmpl, {
    prefix,
    listen: `127.0.0.1:${port}`,
    balance: Array.isArray(balance) ? balance : [balance === "tenant" ? "hash $rc_route consistent;" : "# round robin"],
    nodes: nodes.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`),
  }, debug);
}

/**
 * The HAProxy config for `nodes`; node i is named n<ids[i]> and has that
 * id, which places it on the consistent hash ring (default 1, 2, ...).
 */
export function renderHaproxy({ port, nodes, ids = nodes.map((_, i) => i + 1), balance = "tenant", debug = true }) {
  const tmpl = fs.readFileSync(path.join(ROOT, "deploy/haproxy/roomcast.cfg.tmpl"), "utf8");
  return fill(tmpl, {
    listen: `127.0.0.1:${port}`,
    balance: Array.isArray(balance) ? balance
      : balance === "tenant" ? ["balance url_param tenant", "hash-type consistent"] : ["balance roundrobin"],
    nodes: nodes.map((p, i) => `server n${ids[i]} 127.0.0.1:${p} id ${ids[i]} check cookie n${ids[i]}`),
  }, debug);
}

/**
 * The grouped HAProxy config (deploy/haproxy/roomcast-groups.cfg.tmpl):
 * `groups` is a list of {port (the group's own frontend), nodes: [ports]};
 * group k is g<k+1>, node j overall n<j+1>.
 */
export function renderHaproxyGroups({ port, groups, debug = true }) {
  const tmpl = fs.readFileSync(path.join(ROOT, "deploy/haproxy/roomcast-groups.cfg.tmpl"), "utf8");
  let n = 0;
  const sections = groups.flatMap((g, k) => [
    `frontend group_g${k + 1}`,
    `    bind 127.0.0.1:${g.port}`,
    "    monitor-uri /readyz",
    `    monitor fail if { nbsrv(nodes_g${k + 1}) lt 1 }`,
    `    default_backend nodes_g${k + 1}`,
    "",
    `backend nodes_g${k + 1}`,
    "    balance roundrobin",
    "    cookie rc_node insert indirect nocache httponly",
    "    option httpchk GET /readyz",
    "    http-check expect status 200",
    "    default-server inter 1s fastinter 500ms fall 1 rise 2",
    ...(debug ? ["    http-response set-header X-Roomcast-Upstream %[srv_name]"] : []),
    ...g.nodes.map((p) => { n++; return `    server n${n} 127.0.0.1:${p} id ${n} check cookie n${n}`; }),
    "",
  ]);
  return fill(tmpl, {
    listen: `127.0.0.1:${port}`,
    groups: groups.map((g, k) => `server g${k + 1} 127.0.0.1:${g.port} id ${k + 1} check cookie g${k + 1}`),
    group_sections: sections,
  }, debug);
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

/**
 * Starts `kind` ("nginx" or "haproxy") in front of `nodes` (ports) on a
 * free port; with groupSize > 1 (HAProxy only), consecutive nodes form
 * groups of that size (deploy/haproxy/roomcast-groups.cfg.tmpl). Resolves to {kind, port, url, nodes, nodeOf(header), stop(), logs()}.
 * nodeOf maps an X-Roomcast-Upstream header value to the node's port.
 */
export async function startBalancer(kind, nodes, { ids = nodes.map((_, i) => i + 1), balance = "tenant", groupSize = 1, timeout = 10_000 } = {}) {
  if (groupSize > 1 && (kind !== "haproxy" || balance !== "tenant")) throw new Error("server groups: HAProxy with tenant routing only");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `roomcast-${kind}-`));
  const port = await freePort();
  let cmd, args;
  if (kind === "nginx") {
    const conf = path.join(dir, "nginx.conf");
    fs.writeFileSync(conf, renderNginx({ prefix: dir, port, nodes, balance }));
    cmd = "nginx";
    args = ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log"), "-g", "daemon off;"];
  } else if (kind === "haproxy" && groupSize > 1) {
    const conf = path.join(dir, "haproxy.cfg");
    const groups = [];
    for (let i = 0; i < nodes.length; i += groupSize) groups.push({ port: await freePort(), nodes: nodes.slice(i, i + groupSize) });
    fs.writeFileSync(conf, renderHaproxyGroups({ port, groups }));
    cmd = "haproxy";
    args = ["-f", conf, "-db"];
  } else if (kind === "haproxy") {
    const conf = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(conf, renderHaproxy({ port, nodes, ids, balance }));
    cmd = "haproxy";
    args = ["-f", conf, "-db"];
  } else {
    throw new Error(`unknown balancer ${kind}`);
  }
  const proc = spawn(cmd, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const keep = (l) => { lines.push(l); if (lines.length > 500) lines.shift(); };
  readline.createInterface({ input: proc.stdout }).on("line", keep);
  readline.createInterface({ input: proc.stderr }).on("line", keep);
  let exitInfo = null;
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => { exitInfo = { code, signal }; resolve(exitInfo); }));
  proc.on("error", (e) => keep(String(e)));
  const logs = () => {
    const err = path.join(dir, "error.log");
    return lines.join("\n") + (fs.existsSync(err) ? `\n${fs.readFileSync(err, "utf8")}` : "");
  };
  const stop = async () => {
    if (!exitInfo) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", () => { if (!exitInfo) proc.kill("SIGKILL"); });
  const deadline = Date.now() + timeout;
  while (!exitInfo && Date.now() < deadline && !(await tcpOpen(port))) await sleep(50);
  if (exitInfo || !(await tcpOpen(port))) {
    const out = logs();
    await stop();
    throw new Error(`${kind} did not listen on ${port}: ${JSON.stringify(exitInfo)}\n${out}`);
  }
  const nodeOf = (h) => {
    if (!h) return null;
    const last = String(h).split(",").pop().trim(); // nginx lists every node it tried
    const m = /^n(\d+)$/.exec(last);
    if (m) return nodes[ids.indexOf(Number(m[1]))];
    return Number(last.slice(last.lastIndexOf(":") + 1));
  };
  return { kind, port, url: `http://127.0.0.1:${port}`, nodes, nodeOf, stop, logs, dir };
}

/**
 * Waits until the balancer routes to every node in `ports` (HAProxy marks
 * a server up after `rise` passing checks): handshakes with distinct
 * tenants until each node has answered one.
 */
export async function waitRoutable(lb, ports, { timeout = 15_000 } = {}) {
  const seen = new Set();
  const deadline = Date.now() + timeout;
  for (let i = 0; Date.now() < deadline; i++) {
    const node = await whichNode(lb, `probe-${i}`).catch(() => null);
    if (node) seen.add(node);
    if (ports.every((p) => seen.has(p))) return;
    if (i % 20 === 19) await sleep(100);
  }
  throw new Error(`${lb.kind}: nodes ${ports.filter((p) => !seen.has(p))} never answered`);
}

/** The node that answers an Engine.IO polling handshake of `tenant` through `lb`. */
export async function whichNode(lb, tenant) {
  const q = `EIO=4&transport=polling&tenant=${encodeURIComponent(tenant)}`;
  const res = await fetch(`${lb.url}/socket.io/?${q}`);
  const body = await res.text();
  if (res.status !== 200) throw new Error(`handshake via ${lb.kind}: HTTP ${res.status} ${body}`);
  const node = lb.nodeOf(res.headers.get("x-roomcast-upstream"));
  // Close the probe's session (the tenant, or the sticky cookie, routes it
  // to the same node).
  const { sid } = JSON.parse(body.slice(body.indexOf("{")));
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const bye = await fetch(`${lb.url}/socket.io/?${q}&sid=${sid}`, {
    method: "POST", body: "1", headers: { "Content-Type": "text/plain", ...(cookie ? { Cookie: cookie } : {}) },
  });
  await bye.arrayBuffer();
  return node;
}
