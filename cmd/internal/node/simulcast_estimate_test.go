package node

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSimulcastEstimateChromium: headless Chromium in namespace B (beside
// Fanout, so its traffic stays off the veth) publishes its fake camera
// through whip.html?simulcast=on; headless Chromium in A plays it through
// whep.html with no layer pinned, and negotiates transport-cc, so Fanout
// stamps its packets and estimates its bandwidth from its feedback
// (fastpath/bwe). A tbf qdisc on B's veth then limits what Fanout sends
// to A to a rate only layer l fits: the player is moved down to l within
// 3 s and keeps decoding with no freeze over 1 s; once the limit is
// lifted it is back on h within 15 s. The switch times are logged.
//
// It runs in `make test` since a switch keeps the player's VP8 picture ID
// running on (fastpath/vp8pic.go): before, about half the switches froze
// the player 2.9–3.8 s with no packet lost or NACKed, Chromium not
// decoding the new layer's frames, their picture IDs behind the old
// layer's, until its own PLI brought a later keyframe (issue 18). About
// 25 s.
func TestSimulcastEstimateChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("tc not installed (iproute2)")
	}
	pair := newNetnsPair(t, 0)
	pair.startFanout(t, "")
	done := filepath.Join(t.TempDir(), "done")
	pages := fmt.Sprintf("http://%s:8080/players/", pair.IPB)
	q := "?autostart=true&api=1985&stream=sim-estimate"
	pub := pair.startChild(t, pair.B, "TestSimulcastEstimatePublisher",
		// localhost: getUserMedia wants a secure context; Fanout listens
		// on every address of B.
		"FANOUT_NETNS_PAGE=http://localhost:8080/players/whip.html"+q+"&simulcast=on&codec=vp8", "FANOUT_NETNS_DONE="+done)
	if _, ok := pub.result("publishing", 40*time.Second); !ok {
		t.Fatal("the publisher did not start sending three layers")
	}
	play := pair.startChild(t, pair.A, "TestSimulcastEstimatePlayer",
		"FANOUT_NETNS_PAGE="+pages+"whep.html"+q, "FANOUT_NETNS_B="+pair.B, "FANOUT_NETNS_DEV="+pair.DevB)
	err := play.wait(120 * time.Second)
	if werr := os.WriteFile(done, nil, 0o600); werr != nil {
		t.Error(werr)
	}
	if err != nil {
		t.Error(err)
	}
	if err := pub.wait(30 * time.Second); err != nil {
		t.Error(err)
	}
	for _, k := range []string{"down", "up", "maxFreeze", "maxStall", "estimateOnH", "estimateOnL"} {
		v, _ := play.result(k, 0)
		t.Logf("%s: %s", k, v)
	}
}

// TestSimulcastEstimatePublisher runs the publishing Chromium in B until
// the file FANOUT_NETNS_DONE exists.
func TestSimulcastEstimatePublisher(t *testing.T) {
	skipUnlessNetnsChild(t)
	page, done := netnsEnv(t, "FANOUT_NETNS_PAGE"), netnsEnv(t, "FANOUT_NETNS_DONE")
	ctx, stop := chromiumInNamespace(t)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(150 * time.Second)
	started := false
	for time.Now().Before(deadline) {
		if _, err := os.Stat(done); err == nil {
			return
		}
		s := evalStats(t, ctx)
		if !started && time.Until(deadline)%(5*time.Second) < 500*time.Millisecond {
			t.Logf("publisher: %+v", s)
		}
		if !started && s.State == "connected" && len(s.Encodings) == 3 && minFramesSent(s) > 0 {
			started = true
			netnsResult("publishing", fmt.Sprintf("%+v", s.Encodings))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Error("not told to stop within 150 s")
}

// estimateClient is a player's entry in /api/v1/clients.
type estimateClient struct {
	Publish bool `json:"publish"`
	Layer   *struct {
		Current  string `json:"current"`
		Cap      string `json:"cap"`
		Estimate uint64 `json:"estimate_bps"`
		Downs    uint64 `json:"downs"`
		Switches uint64 `json:"switches"`
		Ups      uint64 `json:"ups"`
	} `json:"layer"`
	Quality struct {
		Tracks [2]struct {
			Packets uint64 `json:"packets"`
			Bytes   uint64 `json:"bytes"`
		} `json:"tracks"`
		NACKs      uint64 `json:"nacks"`
		NACKServed uint64 `json:"nack_served"`
		NACKMissed uint64 `json:"nack_missed"`
		PLIs       uint64 `json:"plis"`
	} `json:"quality"`
}

// estimateSample is one look at the player: the page's stats and Fanout's
// view of it.
type estimateSample struct {
	at    time.Time
	page  pageStats
	layer string
	est   uint64
	bytes uint64
	info  string
}

// TestSimulcastEstimatePlayer plays in A and drives the limit on B's veth.
func TestSimulcastEstimatePlayer(t *testing.T) {
	skipUnlessNetnsChild(t)
	page := netnsEnv(t, "FANOUT_NETNS_PAGE")
	nsB, dev := netnsEnv(t, "FANOUT_NETNS_B"), netnsEnv(t, "FANOUT_NETNS_DEV")
	ctx, stop := chromiumInNamespace(t)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	tc := func(args ...string) {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", nsB, "tc", "qdisc"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("tc qdisc %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	defer func() { _ = exec.Command("ip", "netns", "exec", nsB, "tc", "qdisc", "del", "dev", dev, "root").Run() }()
	look := func() estimateSample {
		s := estimateSample{at: time.Now(), page: evalStats(t, ctx)}
		if c, ok := playerEntry(t, nsB); ok && c.Layer != nil {
			s.layer, s.est = c.Layer.Current, c.Layer.Estimate
			s.bytes = c.Quality.Tracks[1].Bytes
			s.info = fmt.Sprintf("cap %q downs %d ups %d switches %d, audio %d B video %d B %d packets, NACKed %d resent %d missed %d "+
				"(%s), PLIs %d", c.Layer.Cap, c.Layer.Downs, c.Layer.Ups, c.Layer.Switches, c.Quality.Tracks[0].Bytes,
				c.Quality.Tracks[1].Bytes, c.Quality.Tracks[1].Packets, c.Quality.NACKs, c.Quality.NACKServed, c.Quality.NACKMissed,
				resendCounters(nsB), c.Quality.PLIs)
		}
		return s
	}
	// On h and decoding for 3 s first.
	var onH time.Time
	h := waitSample(t, look, 40*time.Second, func(s estimateSample) bool {
		// Chromium gives h a rate only once l and m have theirs (about
		// 150 and 500 kbps): then only l fits the limit.
		if s.layer != "h" || !decoding(s.page) || s.page.BitrateKbps < 500 {
			onH = time.Time{}
			return false
		}
		if onH.IsZero() {
			onH = s.at
		}
		return s.at.Sub(onH) >= 3*time.Second
	})
	netnsResult("estimateOnH", h.est)
	t.Logf("on h: %dpx wide, estimate %d kbps, page %d kbps", h.page.Width, h.est/1000, h.page.BitrateKbps)

	tc("replace", "dev", dev, "root", "tbf", "rate", estimateLimit, "burst", "8kb", "latency", "200ms")
	t0 := time.Now()
	l := waitSample(t, look, 10*time.Second, func(s estimateSample) bool { return s.layer == "l" })
	down := l.at.Sub(t0)
	netnsResult("down", down.Round(10*time.Millisecond))
	// Under the limit for 6 s more: decoding all along.
	var maxFreeze, maxStall time.Duration
	prev, lastFrame := l, l.at
	for time.Since(l.at) < 6*time.Second {
		time.Sleep(200 * time.Millisecond)
		s := look()
		if s.page.FramesDecoded > prev.page.FramesDecoded {
			lastFrame = s.at
		}
		maxStall = max(maxStall, s.at.Sub(lastFrame))
		if s.page.FreezeCount > prev.page.FreezeCount {
			maxFreeze = max(maxFreeze, time.Duration((s.page.TotalFreezesDuration-prev.page.TotalFreezesDuration)*1e9))
		}
		t.Logf("limited: layer %q, estimate %d kbps, page %d kbps, %dpx, %d frames, %d freezes (%.2f s); %s", s.layer, s.est/1000,
			s.page.BitrateKbps, s.page.Width, s.page.FramesDecoded, s.page.FreezeCount, s.page.TotalFreezesDuration, s.info)
		prev = s
	}
	netnsResult("estimateOnL", prev.est)
	netnsResult("maxFreeze", maxFreeze.Round(10*time.Millisecond))
	netnsResult("maxStall", maxStall.Round(10*time.Millisecond))
	if prev.page.FramesDecoded <= l.page.FramesDecoded+6*10 {
		t.Errorf("on l under the limit: %d frames decoded in 6 s, want > 60", prev.page.FramesDecoded-l.page.FramesDecoded)
	}

	tc("del", "dev", dev, "root")
	t1 := time.Now()
	h2 := waitSample(t, look, 20*time.Second, func(s estimateSample) bool { return s.layer == "h" && decoding(s.page) })
	up := h2.at.Sub(t1)
	netnsResult("up", up.Round(10*time.Millisecond))
	t.Logf("limit %s on → l after %v (estimate %d kbps); off → h after %v (estimate %d kbps); longest freeze on l %v, longest stall %v",
		estimateLimit, down.Round(10*time.Millisecond), prev.est/1000, up.Round(10*time.Millisecond), h2.est/1000, maxFreeze, maxStall)
	if down > 3*time.Second {
		t.Errorf("moved down to l %v after the limit, want within 3 s", down)
	}
	if maxFreeze > time.Second || maxStall > time.Second {
		t.Errorf("on l under the limit: a freeze of %v, a stall of %v; want none over 1 s", maxFreeze, maxStall)
	}
	if up > 15*time.Second {
		t.Errorf("moved back up to h %v after the limit was lifted, want within 15 s", up)
	}
}

// estimateLimit is the tbf rate that carries layer l and the audio but
// not layer m.
const estimateLimit = "400kbit"

// waitSample looks every 200 ms until ok, for at most d.
func waitSample(t *testing.T, look func() estimateSample, d time.Duration, ok func(estimateSample) bool) estimateSample {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := look()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("not there after %v: layer %q, estimate %d, page %+v", d, s.layer, s.est, s.page)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// playerEntry returns the one player's /api/v1/clients entry, asked from
// inside namespace B so the answer does not queue behind the limit.
func playerEntry(t *testing.T, nsB string) (estimateClient, bool) {
	out, err := exec.Command("ip", "netns", "exec", nsB, "curl", "-sSf", "--max-time", "3",
		"http://127.0.0.1:1985/api/v1/clients/?count=100").Output()
	if err != nil {
		t.Fatalf("clients: %v", err)
	}
	var r struct {
		Clients []estimateClient `json:"clients"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Clients {
		if !c.Publish {
			return c, true
		}
	}
	return estimateClient{}, false
}

// resendCounters sums Fanout's resend refusals (over the player's budget)
// and forced resends (a switch keyframe's) from /metrics, asked from
// inside namespace B.
func resendCounters(nsB string) string {
	out, err := exec.Command("ip", "netns", "exec", nsB, "curl", "-sSf", "--max-time", "3", "http://127.0.0.1:1985/metrics").Output()
	if err != nil {
		return "no /metrics"
	}
	var paced, forced float64
	for _, line := range strings.Split(string(out), "\n") {
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `"nack_resend_paced"`):
			paced += v
		case strings.Contains(line, `"nack_resend_forced"`):
			forced += v
		}
	}
	return fmt.Sprintf("paced %.0f forced %.0f", paced, forced)
}
