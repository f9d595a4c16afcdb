package node

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPlayPage is a WHEP player that times each phase of its join from
// just before its POST (testdata/chromium/play.html).
//
//go:embed testdata/chromium/play.html
var chromiumPlayPage string

// chromiumJoin is what play.html's play() resolves to: ms after the POST.
type chromiumJoin struct {
	Answered    float64 `json:"answered"`
	ICE         float64 `json:"ice"`
	DTLS        float64 `json:"dtls"`
	FirstPacket float64 `json:"firstPacket"`
	Keyframe    float64 `json:"keyframe"`
	FirstFrame  float64 `json:"firstFrame"`
	NACKs       int     `json:"nackCount"`
	PLIs        int     `json:"pliCount"`
	Error       string  `json:"error"`
}

// TestClientsAiortcChromium: headless Chromium joins the VP8 stream of an
// aiortc publisher (keyframes only when asked) twice, as two WHEP players:
// first when the cached GOP is 3 s old (too old to replay: the join's PLI
// asks aiortc for a keyframe), then 1 s later (that GOP is replayed). Each
// decodes its first frame < 500 ms after its WHEP POST (issue 15).
func TestClientsAiortcChromium(t *testing.T) {
	requireAiortc(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	p := newNetnsPair(t, 0)
	api := p.startFanout(t, "")
	stream := "aiortc-chromium"
	pub := p.startAiortc(t, "aiortc-publisher", "publish", api+"/rtc/v1/whip/?app=live&codec=vp8&stream="+stream, "20")
	p.waitPublisher(t, api, stream, 20*time.Second)
	c := p.startChild(t, p.A, "TestClientsAiortcChromiumPeer", "FANOUT_NETNS_API="+api, "CLIENTS_STREAM="+stream)
	if _, ok := c.result("done", 45*time.Second); !ok {
		_ = c.wait(5 * time.Second)
		t.Fatal("the Chromium player did not finish")
	}
	for _, cl := range p.clients(t, api) {
		if cl.Stream == stream && !cl.Publish && len(cl.Quality.Tracks) == 2 {
			t.Logf("Fanout: player %s got %d video packets, %d replayed (%d of the GOP at its join), %d NACKs, %d PLIs",
				cl.ID, cl.Quality.Tracks[1].Packets, cl.Quality.Replayed, cl.Quality.JoinGOP, cl.Quality.NACKs, cl.Quality.PLIs)
		}
	}
	if err := c.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"join1", "join2"} {
		v, _ := c.result(k, 0)
		t.Logf("%s (ms after the WHEP POST): %s", k, v)
	}
	if err := pub.exited(30 * time.Second); err != nil {
		t.Error(err)
	}
}

// TestClientsAiortcChromiumPeer runs Chromium in A for
// TestClientsAiortcChromium: it waits until the GOP is 3 s old, joins,
// joins again 1 s later, and checks both first frames.
func TestClientsAiortcChromiumPeer(t *testing.T) {
	skipUnlessNetnsChild(t)
	url := netnsEnv(t, "FANOUT_NETNS_API") + "/rtc/v1/whep/?app=live&stream=" + netnsEnv(t, "CLIENTS_STREAM")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(chromiumPlayPage))
	}))
	defer page.Close()
	ctx, stop := chromiumInNamespace(t)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the publisher has been on for ≥ 3 s: its GOP is too old to replay
	arg, _ := json.Marshal(url)
	for i, pause := range []time.Duration{time.Second, 2 * time.Second} {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string]("play("+string(arg)+").then(JSON.stringify)", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		var j chromiumJoin
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			t.Fatalf("play() result %q: %v", raw, err)
		}
		netnsResult("join"+strconv.Itoa(i+1), raw)
		if j.Error != "" || j.FirstFrame >= 500 {
			t.Errorf("join %d: first frame %.0f ms after the WHEP POST, want < 500 (phases, ms: %s)", i+1, j.FirstFrame, raw)
		}
		time.Sleep(pause) // the next join, then Fanout's counters (refreshed every second)
	}
	netnsResult("done", true)
	time.Sleep(time.Second) // the parent reads Fanout's counters meanwhile
}
