package bridge

import (
	"crypto/rand"
	"encoding/binary"
	"io"

	"github.com/fanout/fanout/bridge/hub"
)

// RTPWriter receives plaintext RTP packets for WebRTC players (rtmp_to_rtc).
// Packets carry the SSRC and payload type of RTPConfig. Calls for one kind
// are never concurrent, but audio and video may be written from different
// goroutines at once. pkt is not retained by the bridge after the call; the
// writer must copy it if it keeps it. If the writer implements io.Closer,
// the bridge closes it when an automatic rtmp_to_rtc stream ends. No call
// is made after that, nor after an RTCPlayer's Done channel is closed.
type RTPWriter interface {
	WriteRTP(kind Kind, pkt []byte) error
}

// RTCOutlet opens the WebRTC side of an RTMP stream when it goes live on a
// vhost with rtmp_to_rtc on (implemented by cmd on top of control and
// fastpath). An error leaves the stream RTMP-only.
type RTCOutlet interface {
	OpenRTC(key hub.Key, media RTCMedia) (RTPWriter, error)
}

// KeyframeRequester asks a WebRTC publisher for a key frame (PLI/FIR) on
// behalf of rtc_to_rtmp. It is called from the ingest's own goroutine and
// must not block.
type KeyframeRequester interface {
	RequestKeyframe(key hub.Key)
}

// RTPConfig sets the RTP identity of rtmp_to_rtc output.
type RTPConfig struct {
	VideoPT   uint8  // default 102 (H.264, profile-level-id 42e01f)
	AudioPT   uint8  // default 111 (Opus 48000/2)
	VideoSSRC uint32 // default random
	AudioSSRC uint32 // default random
}

// Default payload types and SDP parameters, as SRS offers them.
const (
	DefaultVideoPT = 102
	DefaultAudioPT = 111
	H264Fmtp       = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	OpusFmtp       = "minptime=10;useinbandfec=1"
	VideoClockRate = 90000
	AudioClockRate = 48000
)

func (c RTPConfig) withDefaults() RTPConfig {
	if c.VideoPT == 0 {
		c.VideoPT = DefaultVideoPT
	}
	if c.AudioPT == 0 {
		c.AudioPT = DefaultAudioPT
	}
	if c.VideoSSRC == 0 {
		c.VideoSSRC = random32()
	}
	if c.AudioSSRC == 0 {
		c.AudioSSRC = random32()
	}
	return c
}

// RTCMedia tells the WebRTC side what an rtmp_to_rtc stream will send.
type RTCMedia struct {
	Video bool // H.264, RTP.VideoPT, H264Fmtp, 90 kHz
	Audio bool // Opus, RTP.AudioPT, 48 kHz stereo
	RTP   RTPConfig
}

// Track is one track of rtmp_to_rtc output as an SDP answer describes it
// (RFC 8866 rtpmap and fmtp), so the WebRTC side offers players exactly
// what the bridge packetizes.
type Track struct {
	Codec     string // SDP encoding name: "H264" or "opus"
	PT        uint8
	ClockRate uint32
	Channels  uint16 // 2 for Opus (RFC 7587 §7), 0 for video
	Fmtp      string
	SSRC      uint32
}

// VideoTrack is the H.264 track: packetization-mode 1 (RFC 6184 §6.3, what
// the packetizer writes: single NAL units, STAP-A, FU-A), constrained
// baseline profile-level-id 42e01f as SRS offers it. ok is false without video.
func (m RTCMedia) VideoTrack() (t Track, ok bool) {
	return Track{Codec: "H264", PT: m.RTP.VideoPT, ClockRate: VideoClockRate, Fmtp: H264Fmtp, SSRC: m.RTP.VideoSSRC}, m.Video
}

// AudioTrack is the Opus track (48 kHz stereo, in-band FEC allowed); ok is
// false without audio.
func (m RTCMedia) AudioTrack() (t Track, ok bool) {
	return Track{Codec: "opus", PT: m.RTP.AudioPT, ClockRate: AudioClockRate, Channels: 2, Fmtp: OpusFmtp, SSRC: m.RTP.AudioSSRC}, m.Audio
}

func random32() uint32 {
	var b [4]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	if v := binary.BigEndian.Uint32(b[:]); v != 0 {
		return v
	}
	return 1
}

// appendRTPHeader appends a 12-byte RTP header (RFC 3550 5.1).
func appendRTPHeader(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) []byte {
	m := pt & 0x7F
	if marker {
		m |= 0x80
	}
	b = append(b, 0x80, m)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	return binary.BigEndian.AppendUint32(b, ssrc)
}
