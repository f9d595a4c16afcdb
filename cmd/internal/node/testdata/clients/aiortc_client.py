"""WHIP/WHEP glue for aiortc (Debian python3-aiortc), run by the interop tests.

    aiortc_client.py publish URL SECONDS        publish a test pattern + a sine with aiortc's own
                                         encoders (keyframes only when asked: PLI/FIR)
    aiortc_client.py play URL SECONDS OUT.json  play a stream: record every RTP packet's sequence
                                         number and payload digest, decode the frames, and
                                         write what was received to OUT.json

Both print "connected" once ICE+DTLS are up, exit 0 after SECONDS, and DELETE the session.
aiortc gathers every candidate before the offer is sent (no trickle); aioice skips
loopback, so this runs in a network namespace with a veth address.
"""

import asyncio
import hashlib
import json
import sys
import time
import urllib.parse
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.contrib.media import MediaPlayer
from aiortc.rtcrtpreceiver import RTCRtpReceiver

received = {"audio": [], "video": []}
frames = {"audio": 0, "video": 0, "video_keyframes": 0}
last_packet = [0.0]  # time.monotonic() of the last RTP packet


def record_packets():
    """Wrap RTCRtpReceiver._handle_rtp_packet to log (seq, payload digest) per kind."""
    original = RTCRtpReceiver._handle_rtp_packet

    async def handle(self, packet, arrival_time_ms):
        codec = self._RTCRtpReceiver__codecs.get(packet.payload_type)
        if codec is not None:
            seq, payload = packet.sequence_number, packet.payload
            if is_rtx(codec):
                seq, payload = int.from_bytes(payload[:2], "big"), payload[2:]
            kind = self._RTCRtpReceiver__kind
            received[kind].append([seq, hashlib.sha256(payload).hexdigest()[:16]])
            last_packet[0] = time.monotonic()
        return await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = handle


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers.get("Location"), resp.read().decode()


async def consume(track):
    while True:
        try:
            frame = await track.recv()
        except Exception:
            return
        frames[track.kind] += 1
        if track.kind == "video" and getattr(frame, "key_frame", False):
            frames["video_keyframes"] += 1


async def run(mode, url, seconds, out):
    pc = RTCPeerConnection()
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state():
        print("state", pc.connectionState, flush=True)
        if pc.connectionState == "connected":
            connected.set()

    players = []
    if mode == "publish":
        video = MediaPlayer("testsrc=size=320x240:rate=15", format="lavfi")
        audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
        players = [video, audio]
        pc.addTrack(audio.audio)
        pc.addTrack(video.video)
    else:
        record_packets()
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        tasks = []
        pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))

    await pc.setLocalDescription(await pc.createOffer())
    t0 = time.monotonic()
    status, location, answer = http("POST", url, pc.localDescription.sdp.encode())
    if status != 201:
        raise SystemExit(f"POST {url}: HTTP {status}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await asyncio.wait_for(connected.wait(), 15)
    print(f"connected {int((time.monotonic() - t0) * 1000)} ms", flush=True)
    await asyncio.sleep(seconds)
    if out:
        with open(out, "w") as f:
            age = int((time.monotonic() - last_packet[0]) * 1000)
            json.dump({"packets": received, "frames": frames, "last_packet_age_ms": age}, f)
    if location:
        try:
            http("DELETE", urllib.parse.urljoin(url, location))
        except Exception as err:  # the session may be gone already
            print("DELETE:", err, flush=True)
    for p in players:
        for t in (p.audio, p.video):
            if t is not None:
                t.stop()
    await pc.close()
    print("done", json.dumps(frames), flush=True)


if __name__ == "__main__":
    mode, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    out = sys.argv[4] if len(sys.argv) > 4 else ""
    if mode not in ("publish", "play") or (mode == "play" and not out):
        raise SystemExit(__doc__)
    asyncio.run(run(mode, url, seconds, out))
