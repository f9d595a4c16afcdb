package bridge

import (
	"strings"
	"testing"
)

// TestTracks: the SDP description of rtmp_to_rtc output matches what the
// packetizer writes (H.264 packetization-mode 1, Opus stereo) and carries
// the configured payload types and SSRCs.
func TestTracks(t *testing.T) {
	m := RTCMedia{Video: true, RTP: RTPConfig{VideoPT: 96, AudioPT: 97, VideoSSRC: 7, AudioSSRC: 8}}
	v, ok := m.VideoTrack()
	if !ok || v.Codec != "H264" || v.PT != 96 || v.SSRC != 7 || v.ClockRate != 90000 ||
		!strings.Contains(v.Fmtp, "packetization-mode=1") || !strings.Contains(v.Fmtp, "profile-level-id=42e01f") {
		t.Errorf("video %+v ok=%v", v, ok)
	}
	if a, ok := m.AudioTrack(); ok || a.Codec != "opus" || a.Channels != 2 || a.ClockRate != 48000 || a.PT != 97 || a.SSRC != 8 {
		t.Errorf("audio %+v ok=%v (stream has no audio)", a, ok)
	}
}
