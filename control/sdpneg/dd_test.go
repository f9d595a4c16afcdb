package sdpneg

import (
	"strconv"
	"strings"
	"testing"
)

// TestNegotiateDependencyDescriptor: Chromium 156's offer (extmap 12 is the
// AV1 dependency descriptor, a=extmap-allow-mixed at session level) is
// answered with the descriptor and allow-mixed when AV1 is chosen, and
// without either for another codec; a player's own id is echoed.
func TestNegotiateDependencyDescriptor(t *testing.T) {
	offer := readTestdata(t, "chromium156_simulcast_offer.sdp")
	av1 := allOn
	av1.VideoCodec = "av1"
	for _, tc := range []struct {
		name  string
		offer string
		opt   Options
		want  uint8
	}{
		{"AV1 simulcast", offer, av1, 12},
		{"AV1 one encoding", strings.ReplaceAll(offer, "a=simulcast:", "a=x-simulcast:"), av1, 12},
		{"VP9", offer, Options{VideoCodec: "vp9"}, 0},
		{"AV1 without allow-mixed, id 12", strings.ReplaceAll(offer, "a=extmap-allow-mixed\r\n", ""), av1, 12},
		{"AV1 without allow-mixed, id 22", strings.ReplaceAll(strings.ReplaceAll(offer, "a=extmap-allow-mixed\r\n", ""),
			"a=extmap:12 "+DDURI, "a=extmap:22 "+DDURI), av1, 0},
		{"AV1 with allow-mixed, id 22", strings.ReplaceAll(offer, "a=extmap:12 "+DDURI, "a=extmap:22 "+DDURI), av1, 22},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := NegotiatePublish(mustParse(t, tc.offer), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			v := n.Tracks[1]
			if v.DDExt != tc.want || n.Tracks[0].DDExt != 0 {
				t.Fatalf("video DD id %d (audio %d), want %d", v.DDExt, n.Tracks[0].DDExt, tc.want)
			}
			got := buildOrFail(t, n, publishParams())
			switch ext := "a=extmap:" + strconv.Itoa(int(tc.want)) + " " + DDURI + "\r\n"; {
			case tc.want != 0 && !strings.Contains(got, ext):
				t.Errorf("answer lacks %q:\n%s", ext, got)
			case tc.want == 0 && strings.Contains(got, DDURI):
				t.Errorf("answer has the descriptor:\n%s", got)
			}
			mixed := strings.Contains(got, "\r\na=extmap-allow-mixed\r\n")
			if wantMixed := tc.want != 0 && strings.Contains(tc.offer, "a=extmap-allow-mixed"); mixed != wantMixed {
				t.Errorf("answer allow-mixed %v, want %v", mixed, wantMixed)
			}
		})
	}
	// A player of an AV1 stream: its own id (7) is answered.
	play := strings.ReplaceAll(chromePlayOffer(t), "a=mid:1\r\n", "a=mid:1\r\na=extmap:7 "+DDURI+"\r\n")
	n, err := NegotiatePlay(mustParse(t, play), StreamDesc{Video: &Codec{Name: CodecAV1, PT: 45, ClockRate: 90000}}, allOn)
	if err != nil {
		t.Fatal(err)
	}
	if v := n.Tracks[len(n.Tracks)-1]; v.DDExt != 7 {
		t.Fatalf("player DD id %d, want 7", v.DDExt)
	}
	if got := buildOrFail(t, n, playParams()); !strings.Contains(got, "a=extmap:7 "+DDURI+"\r\n") {
		t.Errorf("play answer lacks the descriptor:\n%s", got)
	}
}

func playParams() AnswerParams {
	p := publishParams()
	p.Play, p.SSRCs = true, map[Kind]uint32{KindAudio: 1001, KindVideo: 1002}
	return p
}
