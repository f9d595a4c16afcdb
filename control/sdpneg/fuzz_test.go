package sdpneg

import (
	"errors"
	"testing"

	"github.com/pion/sdp/v3"
)

// fuzzSeeds are real offers; testdata/fuzz/ holds them too (a pion
// publisher offer, a Chromium-like offer, the spec's curl offer).
func fuzzSeeds(f *testing.F) []string {
	return []string{
		curlOffer,
		chromePublishOffer(f),
		chromePlayOffer(f),
		readTestdata(f, "pion_publish_offer.sdp"),
		readTestdata(f, "pion_play_offer.sdp"),
		chromeSimulcastOffer(f),
		readTestdata(f, "chromium156_simulcast_offer.sdp"),
		sessionICE(),
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := ParseOffer(raw)
		if err != nil {
			if o != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseOffer = %v, %v", o, err)
			}
			return
		}
		if len(o.Media) == 0 || len(o.Media) != len(o.SDP.MediaDescriptions) {
			t.Fatalf("media %d, m-lines %d", len(o.Media), len(o.SDP.MediaDescriptions))
		}
		for _, m := range o.Media {
			if !isToken(m.Mid) || m.Desc == nil {
				t.Fatalf("media %+v", m)
			}
		}
	})
}

// FuzzNegotiate parses, negotiates as publisher and as player, builds both
// answers and requires every answer to parse back as an SDP whose m-lines
// match the offer's mids.
func FuzzNegotiate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		for _, flags := range []uint8{0, 0x03, 0x07, 0x0b, 0x13, 0x1f, 0x23} {
			f.Add([]byte(s), flags)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, flags uint8) {
		o, err := ParseOffer(raw)
		if err != nil {
			return
		}
		codecs := []string{"", "h264", "hevc", "vp8", "vp9", "av1", "pcmu", "pcma"}
		opt := Options{NACK: flags&1 != 0, TWCC: flags&2 != 0, VideoCodec: codecs[flags>>2&7]}
		if flags&0x20 != 0 {
			opt.AudioCodec = codecs[6+(flags>>6&1)]
		}
		if n, err := NegotiatePublish(o, opt); err == nil {
			checkAnswer(t, o, n, false)
		} else if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("publish: unclassified error %v", err)
		}
		s := DefaultStreamDesc()
		if flags&0x80 != 0 {
			s.Video = nil
		}
		if n, err := NegotiatePlay(o, s, opt); err == nil {
			checkAnswer(t, o, n, true)
		} else if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("play: unclassified error %v", err)
		}
	})
}

func checkAnswer(t *testing.T, o *Offer, n *Negotiated, play bool) {
	t.Helper()
	p := publishParams()
	p.Play = play
	p.SSRCs = map[Kind]uint32{KindAudio: 1, KindVideo: 2}
	b, err := BuildAnswer(n, p)
	if err != nil {
		t.Fatalf("BuildAnswer: %v", err)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, b)
	}
	if len(sd.MediaDescriptions) != len(o.Media) {
		t.Fatalf("answer has %d m-lines, offer %d", len(sd.MediaDescriptions), len(o.Media))
	}
	for i, md := range sd.MediaDescriptions {
		if mid, _ := md.Attribute("mid"); mid != o.Media[i].Mid {
			t.Fatalf("m-line %d: mid %q, offer %q", i, mid, o.Media[i].Mid)
		}
		if len(md.MediaName.Formats) != 1 {
			t.Fatalf("m-line %d formats %v", i, md.MediaName.Formats)
		}
	}
	// The answer has the shape our own parser accepts.
	if _, err := ParseOffer(b); err != nil {
		t.Fatalf("answer does not re-parse: %v", err)
	}
}
