// Browser test scaffolding: the system Chromium (Debian's `chromium`, driven
// by playwright-core, which downloads no browser), a page served from an
// origin of its own (another port than the server under test), and the
// console errors each page logged.
import http from "node:http";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { freePort } from "../node/lib/cluster.mjs";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Launches headless Chromium; fails with the way to install it when missing. */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM to its path)`);
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

/**
 * Serves `html` (a function of the request URL, or a string) at / of
 * http://127.0.0.1:<free port>: an origin other than the server's.
 * Resolves to {url, close()}.
 */
export async function pageOrigin(html) {
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    if (req.url === "/favicon.ico") { res.writeHead(204); res.end(); return; }
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(typeof html === "function" ? html(req.url) : html);
  });
  await new Promise((resolve, reject) => { srv.once("error", reject); srv.listen(port, "127.0.0.1", resolve); });
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

/**
 * Opens a new page (in a context of its own) that records its console
 * errors and uncaught exceptions in page.errors, each {text, at}.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => { if (m.type() === "error") page.errors.push({ text: m.text(), url: m.location()?.url ?? "", at: Date.now() }); });
  page.on("pageerror", (e) => page.errors.push({ text: `uncaught: ${e.message}`, at: Date.now() }));
  await page.goto(url);
  return page;
}

/** A page that loads the client bundle served by `serverUrl`. */
export function bundlePage(serverUrl) {
  return `<!doctype html><meta charset="utf-8"><title>roomcast browser test</title>
<script src="${serverUrl}/socket.io/socket.io.js"></script>
<script>
  // Helpers the tests call through page.evaluate.
  window.connect = (url, opts = {}) => new Promise((resolve, reject) => {
    const s = io(url, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500, ...opts });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (e) => reject(new Error("connect_error: " + e.message)));
  });
  window.upgraded = (s) => new Promise((resolve) => {
    if (s.io.engine.transport.name === "websocket") return resolve("websocket");
    s.io.engine.once("upgrade", (t) => resolve(t.name));
  });
  window.ack = (s, ...args) => s.timeout(30000).emitWithAck(...args);
</script>`;
}
