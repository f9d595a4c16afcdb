// rtc-page.js — drives whip.html, whep.html, rtc_publisher.html and
// rtc_player.html. The <body> says which: data-role="publish|play" and
// data-api="whip|legacy".

import { params, whipURL, rtcURL, legacyAPI, Peer, camera } from "./fanout.js";
import { $, play, showError, showState, formatStats, every } from "./ui.js";

const role = document.body.dataset.role;
const api = document.body.dataset.api;
const p = params();

const url = $("url");
const video = $("video");
const startBtn = $("start");
const stopBtn = $("stop");
url.value = api === "whip" ? whipURL(p, role === "publish" ? "whip" : "whep") : rtcURL(p);

let peer = null;
let stopStats = () => {};

async function start() {
  await stop();
  showError($("error"), null);
  const current = (peer = new Peer(role));
  showState($("state"), current);
  startBtn.disabled = true;
  stopBtn.disabled = false;
  try {
    if (role === "publish") {
      // Simulcast wants a capture big enough for three layers (Chromium
      // drops the top ones of a small picture).
      const simulcast = p.simulcast && api === "whip";
      const local = await camera(simulcast ? { width: 1280, height: 720 } : undefined);
      current.send(local, simulcast, api === "whip" ? p.svc : "");
      play(video, local);
    } else {
      play(video, current.receive());
    }
    if (api === "whip") await current.whip(url.value);
    else await current.legacy(legacyAPI(url.value, role, p.schema), url.value);
    await current.connected(15000);
  } catch (err) {
    current.fail(err);
    showError($("error"), err);
    await current.close(); // release the camera and the server's session
  }
  stopStats = every(1000, async () => {
    if (role === "play") await current.readLayer();
    $("stats").textContent = formatStats(await current.stats());
  });
}

// selectLayer switches a WHEP player's simulcast layer (the page's select,
// or the console and tests).
window.selectLayer = async (layer) => {
  showError($("error"), null);
  try {
    if (peer) await peer.selectLayer(layer);
  } catch (err) {
    showError($("error"), err);
  }
};
const layerSelect = $("layer");
if (layerSelect) {
  layerSelect.value = p.layer;
  layerSelect.addEventListener("change", () => window.selectLayer(layerSelect.value || "h"));
}

async function stop() {
  stopStats();
  if (peer) await peer.close();
  video.srcObject = null;
  startBtn.disabled = false;
  stopBtn.disabled = true;
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  start();
});
stopBtn.addEventListener("click", stop);
window.addEventListener("pagehide", stop);

// fanoutStats is the page's state and stats, for the console and tests.
window.fanoutStats = async () => (peer ? peer.stats() : { role, state: "idle", error: "" });

if (p.autostart) start();
