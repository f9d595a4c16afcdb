// ui.js — the few DOM helpers the pages share.

export const $ = (id) => document.getElementById(id);

// play attaches a stream to a <video> and starts it; when the browser
// refuses sound without a click, it plays muted instead.
export function play(video, stream) {
  video.srcObject = stream;
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
  });
}

export function showError(el, err) {
  el.textContent = err ? String(err.message || err) : "";
  el.hidden = !err;
}

// showState mirrors a Peer's state into el (text and a class for colour).
export function showState(el, peer) {
  const update = () => {
    el.textContent = peer.state;
    el.className = `state state-${peer.state}`;
  };
  peer.addEventListener("state", update);
  update();
}

// formatStats is one readable line of a Peer's stats.
export function formatStats(s) {
  const parts = [`${s.bitrateKbps} kbps`];
  if (s.role === "play") parts.push(`${s.framesDecoded} frames decoded`, `${s.packetsLost} packets lost`);
  else parts.push(`${s.framesSent} frames sent`);
  if (s.width) parts.push(`${s.width}×${s.height}`);
  if (s.framesPerSecond) parts.push(`${s.framesPerSecond} fps`);
  if (s.codec) parts.push(s.codec);
  if (s.layer) parts.push(`layer ${s.layer}`);
  if (s.encodings && s.encodings.length > 1) parts.push(s.encodings.map((e) => `${e.rid} ${e.width}×${e.height}`).join(", "));
  return parts.join(" · ");
}

// every runs fn now and then each interval ms; it returns a stop function.
export function every(ms, fn) {
  fn();
  const id = setInterval(fn, ms);
  return () => clearInterval(id);
}
