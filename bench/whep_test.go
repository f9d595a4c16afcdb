package bench

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

func TestOfferParses(t *testing.T) {
	id, err := newIdentity()
	if err != nil {
		t.Fatal(err)
	}
	offer := buildOffer("ufrag123", "pwdpwdpwdpwdpwdpwdpwdpwd", id.fingerprint, netip.MustParseAddrPort("127.0.0.1:5000"))
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	if len(sd.MediaDescriptions) != 2 || !strings.Contains(offer, "a=setup:active") ||
		!strings.Contains(offer, "a=recvonly") || !strings.Contains(offer, "127.0.0.1 5000 typ host") {
		t.Fatalf("offer:\n%s", offer)
	}
}

func TestParseAnswer(t *testing.T) {
	ans := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:srv\r\na=ice-pwd:srvpwd\r\n" +
		"a=fingerprint:sha-256 ab:cd\r\na=rtpmap:111 opus/48000/2\r\n" +
		"a=candidate:1 1 udp 2130706431 192.168.1.5 8000 typ host\r\n" +
		"a=candidate:2 1 tcp 2130706431 127.0.0.1 8000 typ host tcptype passive\r\n" +
		"a=candidate:3 1 udp 2130706431 127.0.0.1 8001 typ host\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:106 H264/90000\r\n"
	ai, err := parseAnswer(ans)
	if err != nil {
		t.Fatal(err)
	}
	if ai.ufrag != "srv" || ai.pwd != "srvpwd" || ai.fingerprint != "AB:CD" ||
		ai.candidate != netip.MustParseAddrPort("127.0.0.1:8001") ||
		ai.ptKind[111] != kindAudio || ai.ptKind[106] != kindVideo {
		t.Fatalf("parsed %+v", ai)
	}
	if _, err := parseAnswer(strings.Replace(ans, "a=ice-pwd:srvpwd\r\n", "", 1)); err == nil {
		t.Fatal("answer without ice-pwd must fail")
	}
}

func TestIsH264Keyframe(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want bool
	}{
		{[]byte{0x65, 0}, true},                         // IDR
		{[]byte{0x41, 0}, false},                        // non-IDR slice
		{[]byte{0x7c, 0x85}, true},                      // FU-A start, IDR
		{[]byte{0x7c, 0x05}, false},                     // FU-A middle
		{[]byte{0x78, 0, 2, 0x67, 0, 0, 1, 0x68}, true}, // STAP-A with SPS
		{[]byte{0x5c, 0x81}, false},                     // FU-A start, non-IDR
	} {
		if got := isH264Keyframe(tc.p); got != tc.want {
			t.Errorf("isH264Keyframe(% x) = %v", tc.p, got)
		}
	}
	frames := synthFrame(nil, true, 3, 1200)
	if len(frames) != 4 || !isH264Keyframe(frames[0]) || !isH264Keyframe(frames[1]) || isH264Keyframe(frames[2]) {
		t.Fatal("synthetic keyframe not recognised")
	}
}

func TestRTPHeaderLen(t *testing.T) {
	b := make([]byte, 40)
	b[0] = 0x80
	if rtpHeaderLen(b) != 12 {
		t.Fatal("plain header")
	}
	b[0] = 0x91 // X=1, CC=1
	b[16+3] = 2 // 2 words of extension
	if got := rtpHeaderLen(b); got != 12+4+4+8 {
		t.Fatalf("ext header len %d", got)
	}
	if rtpHeaderLen(b[:10]) != -1 {
		t.Fatal("short packet")
	}
}
