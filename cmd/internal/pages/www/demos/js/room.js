// room.js — drives demos/one2one.html and demos/room.html. Everyone in a
// room publishes by WHIP as app=<room>, stream=<room>-<display>, and plays
// by WHEP every other participant that the signaling service says is
// publishing. <body data-max="2"> makes a one-to-one room; data-small asks
// the camera for small tiles.

import { params, whipURL, Peer, camera } from "../../players/js/fanout.js";
import { $, play, showError, showState, formatStats, every } from "../../players/js/ui.js";

const p = params();
const maxPeers = Number(document.body.dataset.max) || 0;
const small = document.body.dataset.small === "true";
const rand = () => Math.random().toString(36).slice(2, 7);
$("room").value = p.query.get("room") || rand();
$("display").value = p.query.get("display") || rand();

// sigURL is the signaling WebSocket on this server, or ?wsh= / ?wsp=.
function sigURL() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const host = p.query.get("wsh") || location.hostname;
  const port = p.query.get("wsp") || location.port;
  return `${scheme}://${port ? `${host}:${port}` : host}/sig/v1/rtc`;
}

function streamOf(room, display) {
  return { ...p, app: room, stream: `${room}-${display}` };
}

// Signaling is the request/reply and notify protocol of /sig/v1/rtc.
class Signaling {
  constructor(url, onNotify, onClose) {
    this.url = url;
    this.onNotify = onNotify;
    this.onClose = onClose;
    this.pending = new Map();
    this.tid = 0;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = (this.ws = new WebSocket(this.url));
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`signaling: cannot connect to ${this.url}`));
      ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
      ws.onclose = (ev) => {
        clearInterval(this.keepalive);
        for (const req of this.pending.values()) req.reject(new Error("signaling closed"));
        this.pending.clear();
        this.onClose(ev);
      };
      this.keepalive = setInterval(() => this.request({ action: "ping" }).catch(() => {}), 20000);
    });
  }

  receive(env) {
    const m = env.msg;
    if (m.action === "notify") return this.onNotify(m);
    const req = this.pending.get(env.tid);
    if (!req) return;
    this.pending.delete(env.tid);
    if (m.action === "error") req.reject(new Error(`signaling: ${m.error}`));
    else req.resolve(m);
  }

  request(msg) {
    const tid = String(++this.tid);
    return new Promise((resolve, reject) => {
      this.pending.set(tid, { resolve, reject });
      this.ws.send(JSON.stringify({ tid, msg }));
    });
  }

  close() {
    if (this.ws) this.ws.close();
  }
}

// Remote plays one other participant in its own tile.
class Remote {
  constructor(session, display) {
    this.display = display;
    this.tile = document.createElement("figure");
    this.tile.className = "tile";
    this.tile.innerHTML = `<video autoplay playsinline></video><figcaption><b></b> · <span class="state"></span> · <span class="stats"></span></figcaption><p class="error" hidden></p>`;
    this.tile.querySelector("b").textContent = display;
    $("tiles").append(this.tile);
    this.closed = false;
    this.run(session);
  }

  // run plays the stream, trying again a few times if the first try fails.
  async run(session) {
    const url = whipURL(streamOf(session.room, this.display), "whep");
    for (let attempt = 1; attempt <= 3 && !this.closed; attempt++) {
      const peer = (this.peer = new Peer("play"));
      showState(this.tile.querySelector(".state"), peer);
      play(this.tile.querySelector("video"), peer.receive());
      try {
        await peer.whip(url);
        await peer.connected(15000);
        showError(this.tile.querySelector(".error"), null);
        return;
      } catch (err) {
        peer.fail(err);
        showError(this.tile.querySelector(".error"), err);
        await peer.close();
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async refresh() {
    if (this.peer) this.tile.querySelector(".stats").textContent = formatStats(await this.peer.stats());
  }

  close() {
    this.closed = true;
    if (this.peer) this.peer.close();
    this.tile.remove();
  }
}

// Session is this page's membership of one room.
class Session {
  constructor(room, display) {
    this.room = room;
    this.display = display;
    this.state = "joining";
    this.error = "";
    this.members = [];
    this.self = null;
    this.remotes = new Map();
  }

  setState(state, err) {
    this.state = state;
    $("state").textContent = state;
    $("state").className = `state state-${state === "publishing" ? "connected" : state}`;
    if (err) {
      this.error = err.message;
      showError($("error"), err);
    }
  }

  async start() {
    this.setState("joining");
    this.sig = new Signaling(sigURL(), (m) => this.sync(m.participants), () => {
      if (this.state !== "left") this.setState("error", new Error("signaling connection closed"));
    });
    await this.sig.open();
    const joined = await this.sig.request({
      action: "join", room: this.room, display: this.display, max: maxPeers || undefined,
    });
    this.setState("joined");
    this.sync(joined.participants);

    const video = small ? { width: { ideal: 320 }, height: { ideal: 240 } } : true;
    const local = await camera(video);
    this.self = new Peer("publish");
    this.self.send(local);
    play($("local"), local);
    await this.self.whip(whipURL(streamOf(this.room, this.display), "whip"));
    await this.self.connected(15000);
    await this.sig.request({ action: "publish" });
    this.setState("publishing");
  }

  // sync plays every publishing participant but us, and drops those gone.
  sync(participants) {
    this.members = participants || [];
    $("members").textContent = this.members.map((m) => m.display + (m.publishing ? "" : " (joining)")).join(", ");
    const want = new Set(this.members.filter((m) => m.publishing && m.display !== this.display).map((m) => m.display));
    for (const [name, r] of this.remotes) {
      if (!want.has(name)) {
        r.close();
        this.remotes.delete(name);
      }
    }
    for (const name of want) {
      if (!this.remotes.has(name)) this.remotes.set(name, new Remote(this, name));
    }
  }

  async refresh() {
    if (this.self) $("localStats").textContent = formatStats(await this.self.stats());
    for (const r of this.remotes.values()) await r.refresh();
  }

  async stop() {
    this.state = "left";
    if (this.sig) {
      await this.sig.request({ action: "leave" }).catch(() => {});
      this.sig.close();
    }
    for (const r of this.remotes.values()) r.close();
    this.remotes.clear();
    if (this.self) await this.self.close();
    $("local").srcObject = null;
    this.setState("left");
  }
}

let session = null;
let stopStats = () => {};

async function start() {
  await stop();
  showError($("error"), null);
  const room = $("room").value.trim();
  const display = $("display").value.trim();
  const share = new URL(location.href);
  share.searchParams.set("room", room);
  share.searchParams.delete("display");
  $("share").href = share.href;
  $("share").textContent = share.href;
  session = new Session(room, display);
  $("start").disabled = true;
  $("stop").disabled = false;
  stopStats = every(1000, () => session && session.refresh());
  try {
    await session.start();
  } catch (err) {
    if (session.self) session.self.fail(err);
    session.setState("error", err);
  }
}

async function stop() {
  stopStats();
  if (session) await session.stop();
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  start();
});
$("stop").addEventListener("click", stop);
window.addEventListener("pagehide", () => session && session.stop());

// fanoutStats is the room's state: ours and every remote's stats.
window.fanoutStats = async () => {
  if (!session) return { state: "idle", error: "", members: [], self: null, remotes: {} };
  const remotes = {};
  for (const [name, r] of session.remotes) remotes[name] = r.peer ? await r.peer.stats() : { state: "new" };
  return {
    state: session.state, error: session.error, room: session.room, display: session.display,
    members: session.members, self: session.self ? await session.self.stats() : null, remotes,
  };
};

if (p.autostart) start();
