// srs_player.js — HTTP-FLV (mpegts.js) and HLS (hls.js) playback, with
// SRS's srs_player.html parameters: ?app=live&stream=livestream.flv, or
// ?stream=livestream.m3u8, or ?url=<full URL>; ?port= picks another port.

import { params } from "./fanout.js";
import { $, showError, every } from "./ui.js";

const p = params();
const video = $("video");
const startBtn = $("start");
const stopBtn = $("stop");

function defaultURL() {
  if (p.query.get("url")) return p.query.get("url");
  const stream = /\.(flv|m3u8|ts)$/.test(p.stream) ? p.stream : `${p.stream}.flv`;
  const port = p.query.get("port") || location.port;
  const host = port ? `${location.hostname}:${port}` : location.hostname;
  return `${location.protocol}//${host}/${p.app}/${stream}`;
}
$("url").value = defaultURL();

// The current player: engine is "mpegts", "hls" or "native".
let cur = { engine: "", state: "idle", error: "", player: null, kbps: 0 };
let stopStats = () => {};

function setState(state, err) {
  cur.state = state;
  if (err) cur.error = err;
  $("state").textContent = state;
  $("state").className = `state state-${state === "playing" ? "connected" : state}`;
  if (err) showError($("error"), new Error(err));
}

// fail shows a fatal error and stops the player (after its own callback
// returns), so that it does not retry behind the message.
function fail(err) {
  setState("error", err);
  const player = cur.player;
  cur.player = null;
  if (player) setTimeout(() => player.destroy(), 0);
}

function engineFor(url) {
  const path = new URL(url, location.href).pathname;
  if (path.endsWith(".m3u8")) {
    if (window.Hls && Hls.isSupported()) return "hls";
    if (video.canPlayType("application/vnd.apple.mpegurl")) return "native";
    return "";
  }
  return window.mpegts && mpegts.isSupported() ? "mpegts" : "";
}

function startMpegts(url) {
  const type = new URL(url, location.href).pathname.endsWith(".ts") ? "mpegts" : "flv";
  const player = mpegts.createPlayer({ type, isLive: true, url }, { enableStashBuffer: false });
  player.on(mpegts.Events.ERROR, (type, detail, info) => {
    // HTTP failures carry the status in info.code and its text in info.msg.
    const what = info && info.code > 0 ? `HTTP ${info.code}: ${info.msg}` : `${detail}: ${(info && info.msg) || ""}`;
    fail(`${type}: ${what} — ${url}`);
  });
  player.on(mpegts.Events.STATISTICS_INFO, (s) => (cur.kbps = Math.round((s.speed || 0) * 8)));
  player.attachMediaElement(video);
  player.load();
  return player;
}

function startHls(url) {
  const player = new Hls({ lowLatencyMode: true });
  player.on(Hls.Events.ERROR, (_, data) => {
    if (!data.fatal) return;
    const r = data.response;
    const what = r && r.code ? `HTTP ${r.code}: ${r.text || ""}` : data.details;
    fail(`${data.type}: ${what} — ${url}`);
  });
  player.on(Hls.Events.FRAG_LOADED, (_, data) => {
    const s = data.frag.stats;
    const ms = s.loading.end - s.loading.start;
    if (ms > 0) cur.kbps = Math.round((s.loaded * 8) / ms);
  });
  player.loadSource(url);
  player.attachMedia(video);
  return player;
}

function start() {
  stop();
  showError($("error"), null);
  const url = $("url").value;
  cur = { engine: engineFor(url), state: "loading", error: "", player: null, kbps: 0 };
  startBtn.disabled = true;
  stopBtn.disabled = false;
  if (!cur.engine) {
    fail("this browser has no Media Source Extensions for " + url);
    return;
  }
  setState("loading");
  if (cur.engine === "mpegts") cur.player = startMpegts(url);
  else if (cur.engine === "hls") cur.player = startHls(url);
  else video.src = url;
  video.play().catch(() => {});
  stopStats = every(1000, async () => {
    const s = await window.fanoutStats();
    $("stats").textContent = `${cur.engine} · ${s.bitrateKbps} kbps · ${s.framesDecoded} frames decoded`;
  });
}

function stop() {
  stopStats();
  if (cur.player) cur.player.destroy();
  cur.player = null;
  video.removeAttribute("src");
  video.load();
  startBtn.disabled = false;
  stopBtn.disabled = true;
  if (cur.state !== "error") setState("idle");
}

video.addEventListener("playing", () => cur.state !== "error" && setState("playing"));
$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  start();
});
stopBtn.addEventListener("click", stop);

// fanoutStats is the page's state and stats, for the console and tests.
window.fanoutStats = async () => {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  return {
    engine: cur.engine, state: cur.state, error: cur.error,
    mpegts: !!(window.mpegts && mpegts.isSupported()), hls: !!(window.Hls && Hls.isSupported()),
    framesDecoded: q ? q.totalVideoFrames - q.droppedVideoFrames : 0, bitrateKbps: cur.kbps,
  };
};

if (p.autostart) start();
