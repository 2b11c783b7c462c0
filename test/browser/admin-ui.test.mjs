// The Socket.IO Admin UI (the page of the @socket.io/admin-ui npm package,
// ui/dist, served unmodified by `roomcast serve --static`) in Chromium,
// against `roomcast serve --admin-ui`: it logs in, lists the connected
// sockets and their rooms, and disconnects one.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { createRequire } from "node:module";
import bcrypt from "bcryptjs";
import { io } from "socket.io-client";
import { startServer } from "../node/lib/server.mjs";
import { SAFETY_NET } from "../node/lib/raw.mjs";
import { launch } from "./lib.mjs";

const require = createRequire(import.meta.url);
const UI_DIR = path.join(path.dirname(require.resolve("@socket.io/admin-ui/package.json")), "ui", "dist");
const wait = { timeout: SAFETY_NET };
const USER = "admin";
const PASSWORD = "browser-pass";

function connect(url) {
  const s = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

describe("Socket.IO Admin UI in Chromium", { timeout: 10 * SAFETY_NET }, () => {
  let browser, srv, context, page, alice, bob;
  const errors = [];

  before(async () => {
    srv = await startServer(["--static", UI_DIR, "--admin-ui", "--admin-user", USER,
      "--admin-password-hash", bcrypt.hashSync(PASSWORD, 8)]);
    alice = await connect(srv.url);
    bob = await connect(srv.url);
    for (const [s, room] of [[alice, "alpha"], [bob, "beta"]]) {
      assert.deepEqual(await s.timeout(SAFETY_NET).emitWithAck("join", room), { ok: true });
    }
    browser = await launch();
    context = await browser.newContext();
    // The page links fonts and icons from CDNs: no network here, refuse them at once.
    await context.route((url) => !url.href.startsWith(srv.url), (route) => route.abort());
    page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  });

  after(async () => {
    alice?.disconnect();
    bob?.disconnect();
    await browser?.close();
    await srv?.stop();
  });

  it("logs in, lists the sockets and their rooms, disconnects one", { timeout: 6 * SAFETY_NET }, async () => {
    await page.goto(`${srv.url}/`);
    await page.getByLabel("Server URL").fill(srv.url);
    await page.getByLabel("Username").fill(USER);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Connect" }).click();

    // The sockets view lists both clients.
    await page.goto(`${srv.url}/#/sockets/`);
    const aliceId = alice.id, bobId = bob.id;
    for (const id of [aliceId, bobId]) {
      await page.locator("tr", { hasText: id }).first().waitFor(wait);
    }
    // Their rooms: the rooms view, and a socket's own page.
    await page.goto(`${srv.url}/#/rooms/`);
    for (const room of ["alpha", "beta"]) {
      await page.locator("tr", { hasText: room }).first().waitFor(wait);
    }
    await page.goto(`${srv.url}/#/n/%2F/sockets/${aliceId}`);
    await page.getByText("alpha", { exact: true }).first().waitFor(wait);

    // Disconnect bob from the sockets view.
    await page.goto(`${srv.url}/#/sockets/`);
    const row = page.locator("tr", { hasText: bobId });
    await row.waitFor(wait);
    const gone = new Promise((resolve) => bob.once("disconnect", resolve));
    await row.locator("button").click();
    assert.equal(await gone, "io server disconnect");
    // (The click also opens the socket's page, as a click on its row does.)
    await page.goto(`${srv.url}/#/sockets/`);
    await page.locator("tr", { hasText: aliceId }).waitFor(wait);
    await page.waitForFunction((id) => ![...document.querySelectorAll("tr")].some((tr) => tr.textContent.includes(id)), bobId, wait);
    assert.ok(alice.connected, "alice stays");

    const own = errors.filter((e) => !/Failed to load resource|ERR_FAILED/.test(e));
    assert.deepEqual(own, [], "console errors (besides the CDN fonts refused offline)");
  });
});
