// fanout.js — the small WebRTC client behind Fanout's pages: SRS's query
// parameters, WHIP/WHEP (RFC 9725) and SRS's legacy JSON API, and the
// getStats() figures the pages show. No framework, no build step.

// params reads SRS's query parameters, with SRS's defaults.
export function params() {
  const q = new URLSearchParams(location.search);
  const flag = (v) => v === "true" || v === "1" || v === "on";
  return {
    server: q.get("server") || location.hostname,
    app: q.get("app") || "live",
    stream: q.get("stream") || "livestream",
    eip: q.get("eip") || "",
    codec: q.get("codec") || "",
    api: q.get("api") || "",
    schema: (q.get("schema") || location.protocol).replace(/:$/, ""),
    autostart: flag(q.get("autostart")),
    simulcast: flag(q.get("simulcast")),
    svc: q.get("svc") || "", // a scalabilityMode for the video, e.g. L1T3 (VP9/AV1)
    layer: q.get("layer") || "",
    query: q,
  };
}

function hostPort(host, port) {
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return port ? `${h}:${port}` : h;
}

// apiBase is the HTTP API origin: the page's host on port 1985 (1990 over
// https) unless ?api= or ?schema= say otherwise.
export function apiBase(p) {
  const port = p.api || (p.schema === "https" ? "1990" : "1985");
  return `${p.schema}://${hostPort(p.server, port)}`;
}

function extraQuery(p) {
  let s = "";
  if (p.eip) s += `&eip=${encodeURIComponent(p.eip)}`;
  if (p.codec) s += `&codec=${encodeURIComponent(p.codec)}`;
  if (p.layer) s += `&layer=${encodeURIComponent(p.layer)}`;
  const temporal = p.query.get("temporal");
  if (temporal) s += `&temporal=${encodeURIComponent(temporal)}`;
  return s;
}

// whipURL is the WHIP (path "whip") or WHEP (path "whep") endpoint.
export function whipURL(p, path) {
  const q = `app=${encodeURIComponent(p.app)}&stream=${encodeURIComponent(p.stream)}`;
  return `${apiBase(p)}/rtc/v1/${path}/?${q}${extraQuery(p)}`;
}

// rtcURL is the legacy webrtc://host[:api]/app/stream address.
export function rtcURL(p) {
  const q = extraQuery(p);
  return `webrtc://${hostPort(p.server, p.api)}/${p.app}/${p.stream}${q ? "?" + q.slice(1) : ""}`;
}

// legacyAPI turns webrtc://host[:port]/app/stream?q into the JSON API URL
// for role "publish" or "play", as SRS's srs.sdk.js does.
export function legacyAPI(streamurl, role, schema) {
  const u = new URL(streamurl.replace(/^webrtc:/, "http:"));
  const port = u.port || (schema === "https" ? "1990" : "1985");
  return `${schema}://${hostPort(u.hostname.replace(/^\[|\]$/g, ""), port)}/rtc/v1/${role}/${u.search}`;
}

// SIMULCAST are the encodings whip.html?simulcast=on sends (RFC 8853):
// full, half and quarter resolution, RIDs h, m and l.
export const SIMULCAST = [
  { rid: "h" },
  { rid: "m", scaleResolutionDownBy: 2 },
  { rid: "l", scaleResolutionDownBy: 4 },
];

// LAYER_REL is the Link relation of WHEP's layer-selection extension.
const LAYER_REL = "urn:ietf:params:whep:ext:core:layer";

// linkURL finds the URL of relation rel in a Link header.
function linkURL(header, rel, base) {
  for (const part of (header || "").split(",")) {
    const m = part.match(/<([^>]+)>\s*;\s*rel="?([^";]+)"?/);
    if (m && m[2] === rel) return new URL(m[1], base).href;
  }
  return "";
}

// HTTPError carries the status and the server's text of a failed request.
export class HTTPError extends Error {
  constructor(status, text, url) {
    super(`HTTP ${status}: ${(text || "").trim() || "(empty body)"} — ${url}`);
    this.status = status;
    this.text = text;
  }
}

function gathered(pc, maxMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

// Peer is one publish or play session. It emits "state" events.
export class Peer extends EventTarget {
  constructor(role) {
    super();
    this.role = role; // "publish" or "play"
    this.pc = new RTCPeerConnection();
    this.location = "";
    this.layerURL = ""; // WHEP: the layer extension's URL, "" if none
    this.layer = ""; // WHEP: the simulcast layer the server says it sends
    this.error = null;
    this.local = null;
    this.prev = null;
    this.bitrate = 0;
    this.pc.addEventListener("connectionstatechange", () => this.emit());
  }

  get state() {
    return this.error ? "error" : this.pc.connectionState;
  }

  emit() {
    this.dispatchEvent(new Event("state"));
  }

  fail(err) {
    this.error = err;
    this.emit();
  }

  // send publishes every track of a local MediaStream, the video as three
  // simulcast encodings when asked; close stops them.
  send(stream, simulcast, svc) {
    this.local = stream;
    for (const track of stream.getTracks()) {
      const init = { direction: "sendonly", streams: [stream] };
      if (simulcast && track.kind === "video") init.sendEncodings = SIMULCAST;
      else if (svc && track.kind === "video") init.sendEncodings = [{ scalabilityMode: svc }];
      this.pc.addTransceiver(track, init);
    }
  }

  // receive asks for audio and video and returns the stream they arrive in.
  receive() {
    const stream = new MediaStream();
    this.pc.addTransceiver("audio", { direction: "recvonly" });
    this.pc.addTransceiver("video", { direction: "recvonly" });
    this.pc.addEventListener("track", (ev) => stream.addTrack(ev.track));
    return stream;
  }

  // offer makes the local offer; Fanout is ICE-lite, so a short wait for
  // host candidates is all the gathering it needs.
  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await gathered(this.pc, 1000);
    return this.pc.localDescription.sdp;
  }

  // whip runs the WHIP/WHEP exchange: POST the offer, 201 with the answer.
  async whip(url) {
    const sdp = await this.offer();
    const resp = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: sdp,
    });
    const text = await resp.text();
    if (resp.status !== 201) throw new HTTPError(resp.status, text, url);
    const loc = resp.headers.get("Location");
    this.location = loc ? new URL(loc, url).href : "";
    this.layerURL = linkURL(resp.headers.get("Link"), LAYER_REL, url);
    await this.pc.setRemoteDescription({ type: "answer", sdp: text });
  }

  // selectLayer asks for a simulcast layer ("h", "m", "l" or a RID) by
  // WHEP's layer extension: a POST of JSON to the Link the answer named.
  async selectLayer(encodingId) {
    if (!this.layerURL) throw new Error("the server offered no layer selection");
    const resp = await fetch(this.layerURL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ encodingId }),
    });
    if (!resp.ok) throw new HTTPError(resp.status, await resp.text(), this.layerURL);
  }

  // readLayer asks the API which simulcast layer the server sends this
  // player now ("" when the stream is not simulcast).
  async readLayer() {
    if (!this.layerURL || !this.location) return "";
    const u = new URL(this.location);
    const session = u.searchParams.get("session");
    try {
      const resp = await fetch(`${u.origin}/api/v1/clients/`);
      const res = await resp.json();
      const c = (res.clients || []).find((c) => c.session === session);
      this.layer = (c && c.layer && c.layer.current) || "";
    } catch (e) {
      // keep the last one
    }
    return this.layer;
  }

  // legacy runs SRS's /rtc/v1/publish/ or /rtc/v1/play/ JSON exchange.
  async legacy(api, streamurl) {
    const sdp = await this.offer();
    const tid = Math.random().toString(16).slice(2, 9);
    const resp = await fetch(api, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ api, streamurl, clientip: null, sdp, tid }),
    });
    const text = await resp.text();
    let res = null;
    try {
      res = JSON.parse(text);
    } catch (e) {
      throw new HTTPError(resp.status, text, api);
    }
    if (!resp.ok || res.code !== 0) {
      throw new HTTPError(resp.status, `code ${res.code}: ${res.msg || ""}`, api);
    }
    this.sessionid = res.sessionid;
    await this.pc.setRemoteDescription({ type: "answer", sdp: res.sdp });
  }

  // connected resolves when ICE and DTLS are up.
  connected(timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`not connected after ${timeoutMs} ms`)), timeoutMs);
      const done = (err) => {
        clearTimeout(timer);
        this.pc.removeEventListener("connectionstatechange", check);
        err ? reject(err) : resolve();
      };
      const check = () => {
        const s = this.pc.connectionState;
        if (s === "connected") done();
        else if (s === "failed" || s === "closed") done(new Error(`connection ${s}`));
      };
      this.pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  // close hangs up: the peer connection, the local tracks, and a DELETE of
  // the WHIP/WHEP session.
  async close() {
    this.pc.close();
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
    const loc = this.location;
    this.location = "";
    this.emit();
    // keepalive lets the DELETE finish when the page is closing.
    if (loc) await fetch(loc, { method: "DELETE", keepalive: true }).catch(() => {});
  }

  // stats reads what the pages show and the tests check.
  async stats() {
    const out = {
      role: this.role, state: this.state, error: this.error ? this.error.message : "",
      framesDecoded: 0, framesSent: 0, framesPerSecond: 0, width: 0, height: 0,
      packetsLost: 0, bitrateKbps: 0, codec: "", layer: this.layer, encodings: [],
    };
    let report;
    try {
      report = await this.pc.getStats();
    } catch (e) {
      return out;
    }
    let bytes = 0;
    const codecs = new Map();
    report.forEach((s) => s.type === "codec" && codecs.set(s.id, s.mimeType));
    report.forEach((s) => {
      if (s.type === "inbound-rtp") bytes += s.bytesReceived || 0;
      if (s.type === "outbound-rtp") bytes += s.bytesSent || 0;
      if (s.kind !== "video" || (s.type !== "inbound-rtp" && s.type !== "outbound-rtp")) return;
      if (s.type === "inbound-rtp") {
        out.framesDecoded = s.framesDecoded || 0;
        out.freezeCount = s.freezeCount || 0;
        out.totalFreezesDuration = s.totalFreezesDuration || 0;
        out.packetsLost = s.packetsLost || 0;
      } else {
        out.framesSent = s.framesSent || 0;
        if (s.rid) out.encodings.push({ rid: s.rid, width: s.frameWidth || 0, height: s.frameHeight || 0, framesSent: s.framesSent || 0 });
      }
      out.framesPerSecond = s.framesPerSecond || 0;
      out.width = s.frameWidth || 0;
      out.height = s.frameHeight || 0;
      out.codec = codecs.get(s.codecId) || "";
    });
    const now = performance.now();
    if (!this.prev || now - this.prev.t >= 500) {
      if (this.prev) this.bitrate = Math.round(((bytes - this.prev.bytes) * 8) / (now - this.prev.t));
      this.prev = { bytes, t: now };
    }
    out.bitrateKbps = this.bitrate;
    return out;
  }
}

// camera asks for the camera and microphone.
export function camera(video) {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: video || true });
}
