// A chat on the roomcast hub protocol alone (join, leave, publish): no
// server code. Presence is kept by the clients: a member announces itself
// on joining ("join"), answers a newcomer ("here"), repeats "here" every
// HEARTBEAT ms and says "leave" when it goes; a member not heard from for
// EXPIRE ms is dropped (it closed its tab without a word).
"use strict";

const HEARTBEAT = 10_000;
const EXPIRE = 3 * HEARTBEAT;
const ROOM_RE = /^[A-Za-z0-9_\-:./@#]{1,128}$/;

const $ = (id) => document.getElementById(id);
const socket = io(); // the page's own origin: the hub that serves it

let me = { name: "", room: null };
const people = new Map(); // socket id -> {name, seen}

function setStatus(text, ok) {
  $("status").textContent = text;
  $("status").classList.toggle("ok", !!ok);
}

function renderPeople() {
  const list = $("people");
  list.replaceChildren();
  const rows = [[socket.id, me.name + " (you)"], ...[...people].map(([id, p]) => [id, p.name])];
  rows.sort((a, b) => a[1].localeCompare(b[1]));
  for (const [id, name] of rows) {
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.id = id;
    list.append(li);
  }
}

function addMessage(who, text, system = false) {
  const li = document.createElement("li");
  if (system) {
    li.className = "system";
    li.textContent = text;
  } else {
    const b = document.createElement("span");
    b.className = "who";
    b.textContent = who;
    li.append(b, document.createTextNode(text));
  }
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

// Publishes into the current room; resolves to the hub's ack.
function publish(event, data) {
  return socket.timeout(10_000).emitWithAck("publish", { room: me.room, event, data });
}

function presence(state) {
  return publish("presence", { id: socket.id, name: me.name, state }).catch(() => {});
}

// Everything from the room is untrusted: check shapes, render as text.
const isText = (v, max) => typeof v === "string" && v.length > 0 && v.length <= max;

socket.on("presence", (p) => {
  if (!p || !isText(p.id, 64) || !isText(p.name, 40) || p.id === socket.id) return;
  if (p.state === "leave") {
    if (people.delete(p.id)) addMessage("", `${p.name} left`, true);
  } else {
    const known = people.has(p.id);
    people.set(p.id, { name: p.name, seen: Date.now() });
    if (p.state === "join") {
      if (!known) addMessage("", `${p.name} joined`, true);
      presence("here"); // tell the newcomer who is here
    }
  }
  renderPeople();
});

socket.on("message", (m) => {
  if (!m || !isText(m.name, 40) || !isText(m.text, 2000)) return;
  addMessage(m.name, m.text);
});

async function joinRoom(room) {
  if (me.room) {
    await presence("leave");
    await socket.timeout(10_000).emitWithAck("leave", me.room).catch(() => {});
  }
  people.clear();
  const res = await socket.timeout(10_000).emitWithAck("join", room);
  if (res.error) throw new Error(res.error);
  me.room = room;
  $("current-room").textContent = room;
  $("text").disabled = false;
  $("send").querySelector("button").disabled = false;
  $("text").placeholder = `Message ${room}`;
  addMessage("", `you joined ${room}`, true);
  renderPeople();
  await presence("join");
}

$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  const room = $("room").value.trim();
  if (!name || !ROOM_RE.test(room)) return;
  me.name = name.slice(0, 40);
  try {
    await joinRoom(room);
  } catch (err) {
    addMessage("", `could not join ${room}: ${err.message}`, true);
  }
});

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !me.room) return;
  $("text").value = "";
  try {
    const res = await publish("message", { name: me.name, text });
    if (res.error) throw new Error(res.error);
    addMessage(me.name, text); // the hub does not echo to the publisher
  } catch (err) {
    addMessage("", `not sent: ${err.message}`, true);
  }
});

socket.on("connect", () => {
  setStatus(socket.recovered ? "reconnected" : "connected", true);
  // After a reconnection the hub recovered, rooms are kept; otherwise join again.
  if (me.room && !socket.recovered) {
    const room = me.room;
    me.room = null;
    joinRoom(room).catch((err) => addMessage("", `could not rejoin ${room}: ${err.message}`, true));
  }
});
socket.on("disconnect", () => setStatus("disconnected, retrying…"));
socket.on("connect_error", (err) => setStatus(`cannot connect: ${err.message}`));

setInterval(() => {
  if (!me.room || !socket.connected) return;
  presence("here");
  const cutoff = Date.now() - EXPIRE;
  for (const [id, p] of people) if (p.seen < cutoff) people.delete(id);
  renderPeople();
}, HEARTBEAT);

window.addEventListener("pagehide", () => { if (me.room) presence("leave"); });
