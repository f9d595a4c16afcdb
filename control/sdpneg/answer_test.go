package sdpneg

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

const testFingerprint = "sha-256 3A:1F:9C:0D:77:E2:41:B8:5C:6A:90:13:FE:28:D4:6B:A1:0E:39:C7:52:8D:F4:16:BB:03:6E:95:2C:D8:47:F1"

func publishParams() AnswerParams {
	return AnswerParams{
		Ufrag: "6pk11386", Pwd: "l91z529147ri9163933p51c4", Fingerprint: testFingerprint, Setup: "passive",
		Candidates: []Candidate{{"127.0.0.1", 8000, "udp"}, {"127.0.0.1", 8000, "tcp"}},
		StreamID:   "live/livestream",
	}
}

var originRE = regexp.MustCompile(`(?m)^o=Fanout [0-9]+ 2 IN IP4 0\.0\.0\.0\r$`)

func buildOrFail(t testing.TB, n *Negotiated, p AnswerParams) string {
	t.Helper()
	b, err := BuildAnswer(n, p)
	if err != nil {
		t.Fatalf("BuildAnswer: %v", err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, b)
	}
	return string(b)
}

func TestBuildAnswerCurlGolden(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, curlOffer), allOn)
	if err != nil {
		t.Fatal(err)
	}
	got := buildOrFail(t, n, publishParams())
	if !originRE.MatchString(got) {
		t.Errorf("origin line missing:\n%s", got)
	}
	got = originRE.ReplaceAllString(got, "o=Fanout ID 2 IN IP4 0.0.0.0\r")
	want := strings.Join([]string{
		"v=0",
		"o=Fanout ID 2 IN IP4 0.0.0.0",
		"s=FanoutPublishSession",
		"t=0 0",
		"a=ice-lite",
		"a=group:BUNDLE 0 1",
		"a=msid-semantic: WMS live/livestream",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111",
		"c=IN IP4 0.0.0.0",
		"a=ice-ufrag:6pk11386",
		"a=ice-pwd:l91z529147ri9163933p51c4",
		"a=fingerprint:" + testFingerprint,
		"a=setup:passive",
		"a=mid:0",
		"a=recvonly",
		"a=rtcp-mux",
		"a=rtcp-mux-only",
		"a=rtcp-rsize",
		"a=rtpmap:111 opus/48000/2",
		"a=candidate:0 1 udp 2130706431 127.0.0.1 8000 typ host generation 0",
		"a=candidate:1 1 tcp 2130706431 127.0.0.1 8000 typ host tcptype passive",
		"m=video 9 UDP/TLS/RTP/SAVPF 106",
		"c=IN IP4 0.0.0.0",
		"a=ice-ufrag:6pk11386",
		"a=ice-pwd:l91z529147ri9163933p51c4",
		"a=fingerprint:" + testFingerprint,
		"a=setup:passive",
		"a=mid:1",
		"a=recvonly",
		"a=rtcp-mux",
		"a=rtcp-mux-only",
		"a=rtcp-rsize",
		"a=rtpmap:106 H264/90000",
		"a=candidate:0 1 udp 2130706431 127.0.0.1 8000 typ host generation 0",
		"a=candidate:1 1 tcp 2130706431 127.0.0.1 8000 typ host tcptype passive",
		"",
	}, "\r\n")
	if got != want {
		t.Errorf("answer\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestBuildAnswerChromePublish(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, chromePublishOffer(t)), allOn)
	if err != nil {
		t.Fatal(err)
	}
	got := buildOrFail(t, n, publishParams())
	for _, line := range []string{
		"a=extmap:3 " + TWCCURI,
		"m=video 9 UDP/TLS/RTP/SAVPF 106",
		"a=rtcp-fb:106 transport-cc\r\na=rtcp-fb:106 ccm fir\r\na=rtcp-fb:106 nack\r\na=rtcp-fb:106 nack pli\r\n" +
			"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
		"a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("answer lacks %q:\n%s", line, got)
		}
	}
	for _, bad := range []string{"rtx", "red", "goog-remb", "abs-send-time", "ssrc", "end-of-candidates", "ice-options"} {
		if strings.Contains(got, bad) {
			t.Errorf("answer has %q", bad)
		}
	}
	if strings.Count(got, "\n") != strings.Count(got, "\r\n") {
		t.Error("line ends are not all CRLF")
	}
}

func TestBuildAnswerPlay(t *testing.T) {
	n, err := NegotiatePlay(mustParse(t, chromePlayOffer(t)), DefaultStreamDesc(), allOn)
	if err != nil {
		t.Fatal(err)
	}
	p := publishParams()
	p.Play, p.Setup, p.CNAME = true, "active", "c0ffee"
	p.SSRCs = map[Kind]uint32{KindAudio: 1001, KindVideo: 1002}
	got := buildOrFail(t, n, p)
	for _, line := range []string{
		"s=FanoutPlaySession\r\n",
		"a=setup:active\r\n",
		"a=mid:1\r\na=extmap:3 " + TWCCURI + "\r\na=sendonly\r\n",
		"a=msid:live/livestream audio-1001\r\na=ssrc:1001 cname:c0ffee\r\na=ssrc:1001 msid:live/livestream audio-1001\r\n",
		"a=msid:live/livestream video-1002\r\na=ssrc:1002 cname:c0ffee\r\na=ssrc:1002 msid:live/livestream video-1002\r\n",
		"m=video 9 UDP/TLS/RTP/SAVPF 106\r\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("answer lacks %q:\n%s", line, got)
		}
	}
}

func TestBuildAnswerParamErrors(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, curlOffer), allOn)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(*AnswerParams){
		"play mismatch":        func(p *AnswerParams) { p.Play = true },
		"no ufrag":             func(p *AnswerParams) { p.Ufrag = "" },
		"ufrag with CRLF":      func(p *AnswerParams) { p.Ufrag = "ab\r\na=x" },
		"no fingerprint":       func(p *AnswerParams) { p.Fingerprint = "" },
		"fingerprint no space": func(p *AnswerParams) { p.Fingerprint = "sha-256" },
		"setup actpass":        func(p *AnswerParams) { p.Setup = "actpass" },
		"stream with space":    func(p *AnswerParams) { p.StreamID = "live/a b" },
		"bad candidate host":   func(p *AnswerParams) { p.Candidates = []Candidate{{"1.2.3.4 x", 8000, "udp"}} },
		"bad candidate port":   func(p *AnswerParams) { p.Candidates = []Candidate{{"1.2.3.4", 0, "udp"}} },
		"bad candidate proto":  func(p *AnswerParams) { p.Candidates = []Candidate{{"1.2.3.4", 8000, "sctp"}} },
		"session name newline": func(p *AnswerParams) { p.SessionName = "a\nb" },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			p := publishParams()
			mod(&p)
			if _, err := BuildAnswer(n, p); !errors.Is(err, ErrAnswerParams) {
				t.Fatalf("err = %v, want ErrAnswerParams", err)
			}
		})
	}
	if _, err := BuildAnswer(nil, publishParams()); !errors.Is(err, ErrAnswerParams) {
		t.Errorf("nil negotiation: %v", err)
	}
}

func TestBuildAnswerDefaults(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, curlOffer), allOn)
	if err != nil {
		t.Fatal(err)
	}
	p := publishParams()
	p.Setup, p.StreamID = "", ""
	p.Candidates = []Candidate{{"2001:db8::1", 18000, "UDP"}}
	got := buildOrFail(t, n, p)
	for _, line := range []string{"a=setup:passive\r\n", "a=msid-semantic: WMS\r\n",
		"a=candidate:0 1 udp 2130706431 2001:db8::1 18000 typ host generation 0\r\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("answer lacks %q:\n%s", line, got)
		}
	}
}

func TestChooseSetup(t *testing.T) {
	tests := []struct{ offer, role, want string }{
		{"actpass", "", "passive"},
		{"actpass", "passive", "passive"},
		{"actpass", "active", "active"},
		{"ACTPASS", "Active", "active"},
		{"active", "active", "passive"},
		{"passive", "passive", "active"},
		{"", "active", "passive"},
		{"holdconn", "", "passive"},
	}
	for _, tt := range tests {
		if got := ChooseSetup(tt.offer, tt.role); got != tt.want {
			t.Errorf("ChooseSetup(%q, %q) = %q, want %q", tt.offer, tt.role, got, tt.want)
		}
	}
}

func TestSetupForAuto(t *testing.T) {
	offer := func(origin string) *Offer {
		o, err := ParseOffer([]byte("v=0\r\n" + origin + "\r\ns=-\r\nt=0 0\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=setup:actpass\r\n" +
			"a=ice-ufrag:u\r\na=ice-pwd:p\r\na=rtpmap:96 VP8/90000\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct{ origin, role, want string }{
		{"o=- 4611731400430051336 2 IN IP4 127.0.0.1", RoleAuto, "passive"},                 // libwebrtc
		{"o=mozilla...THIS_IS_SDPARTA-115.0 8127413 0 IN IP4 0.0.0.0", RoleAuto, "passive"}, // Firefox
		{"o=- 1733 1733 IN IP4 0.0.0.0", RoleAuto, "active"},                                // pion, aiortc
		{"o=- 1733 0 IN IP4 0.0.0.0", "AUTO", "active"},                                     // GStreamer
		{"o=rtc 1733 0 IN IP4 127.0.0.1", RoleAuto, "active"},                               // libdatachannel
		{"o=- 1733 1733 IN IP4 0.0.0.0", "passive", "passive"},                              // dtls_role passive
		{"o=- 4611731400430051336 2 IN IP4 127.0.0.1", "active", "active"},                  // dtls_role active
	}
	for _, tt := range tests {
		if got := SetupFor(offer(tt.origin), tt.role); got != tt.want {
			t.Errorf("SetupFor(%q, %q) = %q, want %q", tt.origin, tt.role, got, tt.want)
		}
	}
	o := offer("o=- 1 1 IN IP4 0.0.0.0")
	o.Setup = "passive"
	if got := SetupFor(o, RoleAuto); got != "active" {
		t.Errorf("passive offer: %q, want active", got)
	}
	o.Setup = "active"
	if got := SetupFor(o, RoleAuto); got != "passive" {
		t.Errorf("active offer: %q, want passive", got)
	}
}
