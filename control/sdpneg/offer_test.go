package sdpneg

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// curlOffer is the offer of the spec's "Connection Failures" curl check
// (spec/srs-webrtc.md), byte for byte: no o=/s=/t= lines, no fingerprint,
// a=ssrc lines, opus PT 111 and H264 PT 106 without fmtp, no final CRLF.
const curlOffer = "v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=msid:- audio\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:3184534672 cname:stream\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\na=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=msid:- video\r\na=rtcp-mux\r\na=rtpmap:106 H264/90000\r\na=ssrc:512761356 cname:stream"

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func chromePublishOffer(t testing.TB) string { return readTestdata(t, "chrome_publish_offer.sdp") }

// chromePlayOffer is the Chrome offer turned into a WHEP (recvonly) offer.
func chromePlayOffer(t testing.TB) string {
	return strings.ReplaceAll(chromePublishOffer(t), "a=sendonly", "a=recvonly")
}

func mustParse(t testing.TB, s string) *Offer {
	t.Helper()
	o, err := ParseOffer([]byte(s))
	if err != nil {
		t.Fatalf("ParseOffer: %v", err)
	}
	return o
}

func TestParseOfferCurl(t *testing.T) {
	o := mustParse(t, curlOffer)
	if o.ICEUfrag != "J8X7" || o.ICEPwd != "Dpq7/fW/osYcPeLsCW2Ek1JH" {
		t.Errorf("ice = %q/%q", o.ICEUfrag, o.ICEPwd)
	}
	if o.Fingerprint != "" || o.Setup != "actpass" {
		t.Errorf("fingerprint %q setup %q", o.Fingerprint, o.Setup)
	}
	if len(o.Media) != 2 || o.Media[0].Kind != KindAudio || o.Media[1].Kind != KindVideo ||
		o.Media[0].Mid != "0" || o.Media[1].Mid != "1" || o.Media[1].Direction != DirSendOnly ||
		!o.Media[1].RTCPMux {
		t.Errorf("media = %+v", o.Media)
	}
}

func TestParseOfferChrome(t *testing.T) {
	o := mustParse(t, chromePublishOffer(t))
	want := "sha-256 4B:7C:0A:2E:91:55:D3:6F:18:C4:AA:03:B7:E2:5D:90:6C:11:F8:3A:27:DE:44:B9:0F:62:8E:C1:75:A9:3D:E0"
	if o.Fingerprint != want || o.ICEUfrag != "Xq3b" || len(o.Media) != 2 {
		t.Errorf("offer = %+v", o)
	}
}

func TestParseOfferLenient(t *testing.T) {
	tests := map[string]string{
		"LF line ends":               strings.ReplaceAll(curlOffer, "\r\n", "\n"),
		"blank lines":                strings.ReplaceAll(curlOffer, "\r\nm=", "\r\n\r\nm="),
		"trailing spaces":            strings.ReplaceAll(curlOffer, "\r\n", " \r\n"),
		"session-level ice (OBS)":    sessionICE(),
		"t= after a= (SRS accepts)":  strings.Replace(curlOffer, "a=group:BUNDLE 0 1\r\n", "a=group:BUNDLE 0 1\r\nt=0 0\r\n", 1),
		"full header out of order":   strings.Replace(curlOffer, "v=0\r\n", "v=0\r\ns=x\r\no=- 1 1 IN IP4 0.0.0.0\r\n", 1),
		"static PCMU without rtpmap": strings.Replace(curlOffer, "SAVPF 111", "SAVPF 111 0", 1),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			o := mustParse(t, s)
			if o.ICEUfrag != "J8X7" {
				t.Errorf("ufrag %q", o.ICEUfrag)
			}
			if _, err := NegotiatePublish(o, Options{NACK: true, TWCC: true}); err != nil {
				t.Errorf("NegotiatePublish: %v", err)
			}
		})
	}
}

// sessionICE moves ice-ufrag/pwd to the session level, as OBS does (#3581).
func sessionICE() string {
	s := strings.ReplaceAll(curlOffer, "a=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\n", "")
	return strings.Replace(s, "a=group:BUNDLE 0 1\r\n",
		"a=group:BUNDLE 0 1\r\na=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\n", 1)
}

func TestParseOfferMalformed(t *testing.T) {
	tests := map[string]string{
		"empty":            "",
		"garbage":          "hello world",
		"no v= first":      "o=- 0 0 IN IP4 0.0.0.0\r\nv=0\r\n",
		"no m-line":        "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n",
		"no mid":           strings.Replace(curlOffer, "a=mid:1\r\n", "", 1),
		"empty mid":        strings.Replace(curlOffer, "a=mid:1", "a=mid:", 1),
		"mid with a space": strings.Replace(curlOffer, "a=mid:1", "a=mid:1 2", 1),
		"duplicate mid":    strings.Replace(curlOffer, "a=mid:1", "a=mid:0", 1),
		"line without =":   strings.Replace(curlOffer, "c=IN", "cIN", 1),
		"bad m-line port":  strings.Replace(curlOffer, "m=video 9", "m=video x", 1),
		"two v= lines":     strings.Replace(curlOffer, "a=group", "v=0\r\na=group", 1),
		"unknown type":     strings.Replace(curlOffer, "a=group", "y=1\r\na=group", 1),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := ParseOffer([]byte(s))
			if !errors.Is(err, ErrMalformed) || o != nil {
				t.Fatalf("ParseOffer = %v, %v; want ErrMalformed", o, err)
			}
			if errors.Is(err, ErrUnsupported) {
				t.Fatal("also ErrUnsupported")
			}
		})
	}
}

func TestNormalizeParsesWithPion(t *testing.T) {
	text, err := normalize(curlOffer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n") {
		t.Errorf("normalized header:\n%s", text[:80])
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		t.Fatal(err)
	}
}
