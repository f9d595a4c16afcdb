package sdpneg

import (
	"reflect"
	"strings"
	"testing"
)

// chromeSimulcastOffer is the Chrome publish offer turned into what
// Chromium writes for sendEncodings [{rid:"q", scaleResolutionDownBy:4},
// {rid:"h", …2}, {rid:"f"}]: a=rid/a=simulcast instead of the video a=ssrc
// lines (the q/h/f names of many SFU clients, lowest first).
func chromeSimulcastOffer(t testing.TB) string {
	return readTestdata(t, "chrome_simulcast_offer.sdp")
}

func TestNegotiatePublishSimulcast(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, chromeSimulcastOffer(t)), allOn)
	if err != nil {
		t.Fatal(err)
	}
	v := n.Tracks[1]
	if v.Simulcast == nil {
		t.Fatal("no simulcast negotiated")
	}
	if want := []string{"f", "h", "q"}; !reflect.DeepEqual(v.Simulcast.RIDs, want) {
		t.Errorf("RIDs %v, want %v (highest first)", v.Simulcast.RIDs, want)
	}
	if s := v.Simulcast; s.MidExt != 4 || s.RIDExt != 10 || s.RRIDExt != 11 || v.SSRC != 0 {
		t.Errorf("ext ids %d/%d/%d ssrc %d", s.MidExt, s.RIDExt, s.RRIDExt, v.SSRC)
	}
	if n.Tracks[0].Simulcast != nil {
		t.Error("audio has simulcast")
	}
	got := buildOrFail(t, n, publishParams())
	audio, video, ok := strings.Cut(got, "m=video")
	if !ok {
		t.Fatalf("no video m-line:\n%s", got)
	}
	for _, line := range []string{
		"a=extmap:4 " + MidURI + "\r\n", "a=extmap:10 " + RIDURI + "\r\n", "a=extmap:11 " + RRIDURI + "\r\n",
		"a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f\r\n",
	} {
		if !strings.Contains(video, line) {
			t.Errorf("video answer lacks %q:\n%s", line, video)
		}
	}
	if strings.Contains(audio, "simulcast") {
		t.Error("audio answer has simulcast")
	}
}

func TestParseSimulcastEdges(t *testing.T) {
	base := strings.ReplaceAll(chromeSimulcastOffer(t), "a=simulcast:send q;h;f", "a=simulcast:send %s")
	tests := []struct {
		name, line string
		want       []string // nil: no simulcast
	}{
		{"h/m/l names", "a=simulcast:send l;m;h", nil}, // rids not declared: none usable
		{"alternatives and paused", "a=simulcast:send ~q;h,q;f", []string{"f", "h", "q"}},
		{"one stream is no simulcast", "a=simulcast:send f", nil},
		{"recv only is ignored", "a=simulcast:recv q;h;f", nil},
		{"two layers", "a=simulcast:send q;f", []string{"f", "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := strings.Replace(base, "a=simulcast:send %s", tt.line, 1)
			n, err := NegotiatePublish(mustParse(t, offer), allOn)
			if err != nil {
				t.Fatal(err)
			}
			sim := n.Tracks[1].Simulcast
			if tt.want == nil {
				if sim != nil {
					t.Errorf("simulcast %v", sim.RIDs)
				}
				return
			}
			if sim == nil || !reflect.DeepEqual(sim.RIDs, tt.want) {
				t.Errorf("got %+v, want %v", sim, tt.want)
			}
		})
	}
	noExt := strings.ReplaceAll(chromeSimulcastOffer(t), "a=extmap:10 "+RIDURI, "")
	if n, err := NegotiatePublish(mustParse(t, noExt), allOn); err != nil || n.Tracks[1].Simulcast != nil {
		t.Errorf("without the rid extension: %v %+v", err, n)
	}
}

func TestRankRIDs(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"l", "m", "h"}, []string{"h", "m", "l"}},
		{[]string{"q", "h", "f"}, []string{"f", "h", "q"}},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}}, // unknown names: offer order
		{[]string{"lo", "hi"}, []string{"hi", "lo"}},
	} {
		if got := rankRIDs(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("rankRIDs(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestNegotiateChromiumSimulcastCapture runs the offer headless Chromium
// 156 made for whip.html?simulcast=on's sendEncodings (h, m/2, l/4),
// captured as is.
func TestNegotiateChromiumSimulcastCapture(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, readTestdata(t, "chromium156_simulcast_offer.sdp")), Options{VideoCodec: "vp8", NACK: true, TWCC: true})
	if err != nil {
		t.Fatal(err)
	}
	v := n.Tracks[1]
	if v.Simulcast == nil || !reflect.DeepEqual(v.Simulcast.RIDs, []string{"h", "m", "l"}) || v.Codec.Name != "VP8" {
		t.Fatalf("video track %+v sim %+v", v, v.Simulcast)
	}
	if s := v.Simulcast; s.MidExt != 4 || s.RIDExt != 10 || s.RRIDExt != 11 {
		t.Errorf("ext ids %d/%d/%d", s.MidExt, s.RIDExt, s.RRIDExt)
	}
	got := buildOrFail(t, n, publishParams())
	if !strings.Contains(got, "a=rid:h recv\r\na=rid:m recv\r\na=rid:l recv\r\na=simulcast:recv h;m;l\r\n") {
		t.Errorf("answer:\n%s", got)
	}
}
