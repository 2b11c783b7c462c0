// The chat demo (examples/chat) served by `roomcast serve --static`, in
// Chromium: two people, presence, messages, changing rooms.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../node/lib/server.mjs";
import { SAFETY_NET } from "../node/lib/raw.mjs";
import { launch, openPage } from "./lib.mjs";

const wait = { timeout: SAFETY_NET };
const peopleOf = (page) => page.$$eval("#people li", (lis) => lis.map((li) => li.textContent));
const messagesOf = (page) => page.$$eval("#messages li", (lis) => lis.map((li) => li.textContent));

async function join(page, name, room) {
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#join button");
  await page.waitForFunction((room) => document.getElementById("current-room").textContent === room, room, wait);
}

describe("the chat demo served with --static", { timeout: 10 * SAFETY_NET }, () => {
  let browser, srv, alice, bob;

  before(async () => {
    browser = await launch();
    srv = await startServer(["--static", "examples/chat"]);
    alice = await openPage(browser, `${srv.url}/`);
    bob = await openPage(browser, `${srv.url}/`);
  });

  after(async () => {
    await browser?.close();
    await srv?.stop();
  });

  it("presence, messages and rooms", { timeout: 4 * SAFETY_NET }, async () => {
    for (const p of [alice, bob]) await p.waitForFunction(() => document.getElementById("status").textContent === "connected", null, wait);
    await join(alice, "alice", "lobby");
    await join(bob, "bob", "lobby");
    // Each sees the other: bob announced himself, alice answered.
    await alice.waitForFunction(() => [...document.querySelectorAll("#people li")].some((li) => li.textContent === "bob"), null, wait);
    await bob.waitForFunction(() => [...document.querySelectorAll("#people li")].some((li) => li.textContent === "alice"), null, wait);
    assert.deepEqual(await peopleOf(alice), ["alice (you)", "bob"]);
    assert.deepEqual(await peopleOf(bob), ["alice", "bob (you)"]);

    await alice.fill("#text", "hello <b>bob</b>");
    await alice.click("#send button");
    await bob.waitForFunction(() => [...document.querySelectorAll("#messages li")].some((li) => li.textContent === "alicehello <b>bob</b>"), null, wait);
    assert.ok((await messagesOf(alice)).includes("alicehello <b>bob</b>"), "the sender sees its own message");
    assert.equal(await bob.$$eval("#messages b", (bs) => bs.length), 0, "messages render as text, not HTML");

    // bob moves to another room: alice sees him go, and he no longer hears the lobby.
    await join(bob, "bob", "elsewhere");
    await alice.waitForFunction(() => ![...document.querySelectorAll("#people li")].some((li) => li.textContent === "bob"), null, wait);
    assert.ok((await messagesOf(alice)).includes("bob left"));
    assert.deepEqual(await peopleOf(bob), ["bob (you)"]);

    for (const p of [alice, bob]) assert.deepEqual(p.errors.map((e) => e.text), [], "console errors");
  });
});
