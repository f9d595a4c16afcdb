package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestQualityChromium: the loss topology of TestQualityLoss (5 % of UDP
// dropped each way, GSO off) with Chromium in A publishing its fake camera
// by WHIP and playing it back by WHEP. The player's framesDecoded keeps
// rising and its freezeCount stays low (NACK repairs both legs), and the
// publisher's targetBitrate climbs past 1 Mbps: Fanout's transport-wide
// feedback drives Chrome's bandwidth estimator.
func TestQualityChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	pair := newNetnsPair(t, 5)
	api := pair.startFanout(t, lossConfig)
	c := pair.startChild(t, pair.A, "TestQualityChromiumPeer", "FANOUT_NETNS_API="+api)
	if err := c.wait(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"targetBitrate", "framesDecoded", "freezeCount", "nackCount", "packetsLost", "twccFeedbacks"} {
		v, _ := c.result(k, 0)
		t.Logf("%s: %s", k, v)
	}
}

// chromiumQuality is what the test samples from the page every second.
type chromiumQuality struct {
	TargetBitrate float64 `json:"targetBitrate"`
	// AvailableBitrate is the publisher's bandwidth estimate (its selected
	// candidate pair's availableOutgoingBitrate).
	AvailableBitrate float64 `json:"availableBitrate"`
	FramesSent       int     `json:"framesSent"`
	FramesDecoded    int     `json:"framesDecoded"`
	FreezeCount      int     `json:"freezeCount"`
	NACKCount        int     `json:"nackCount"`
	PacketsLost      int     `json:"packetsLost"`
	Error            string  `json:"error"`
	// at is when the test took the sample.
	at time.Time
}

// chromiumQualityJS reads the stats of the page's publisher (pub) and
// player (play) connections.
const chromiumQualityJS = `(async () => {
  var out = {targetBitrate: 0, framesSent: 0, framesDecoded: 0, freezeCount: 0, nackCount: 0, packetsLost: 0, error: st.error};
  if (pub) { var r = await pub.getStats(); r.forEach(function (s) {
    if (s.type === "outbound-rtp" && s.kind === "video") { out.targetBitrate = s.targetBitrate || 0; out.framesSent = s.framesSent || 0; }
    if (s.type === "transport" && s.selectedCandidatePairId) {
      var p = r.get(s.selectedCandidatePairId);
      if (p) out.availableBitrate = p.availableOutgoingBitrate || 0;
    }
  }); }
  if (play) (await play.getStats()).forEach(function (s) {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.framesDecoded = s.framesDecoded || 0; out.freezeCount = s.freezeCount || 0;
      out.nackCount = s.nackCount || 0; out.packetsLost = s.packetsLost || 0;
    }
  });
  return JSON.stringify(out);
})()`

// TestQualityChromiumPeer runs Chromium in A for TestQualityChromium.
func TestQualityChromiumPeer(t *testing.T) {
	skipUnlessNetnsChild(t)
	api := netnsEnv(t, "FANOUT_NETNS_API")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(chromiumPage))
	}))
	defer page.Close()
	ctx, stop := chromiumInNamespace(t)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal([]string{api + "/rtc/v1/whip/?app=live&stream=chrome", api + "/rtc/v1/whep/?app=live&stream=chrome", "H264"})
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("start(..."+string(args)+")")); err != nil {
		t.Fatal(err)
	}
	samples, maxTarget := sampleChromium(t, ctx)
	first, last := samples[len(samples)/3], samples[len(samples)-1]
	netnsResult("targetBitrate", strconv.FormatFloat(maxTarget, 'f', 0, 64))
	netnsResult("framesDecoded", last.FramesDecoded)
	netnsResult("freezeCount", last.FreezeCount)
	netnsResult("nackCount", last.NACKCount)
	netnsResult("packetsLost", last.PacketsLost)
	// The player keeps up with what the publisher sends over the same
	// window (clocked, not counted in samples: each sample also waits for
	// the page). An absolute 15 frames/s measured Chromium's capture and
	// encoder too, 20 frames/s at best, which a loaded 2-CPU machine
	// slows; Fanout's part is that what is sent gets decoded.
	secs := last.at.Sub(first.at).Seconds() + 1e-9
	sent, decoded := last.FramesSent-first.FramesSent, last.FramesDecoded-first.FramesDecoded
	t.Logf("over the last %.1f s: %d frames sent (%.1f/s), %d decoded (%.1f/s)", secs, sent, float64(sent)/secs, decoded, float64(decoded)/secs)
	if decoded <= 0 || 4*decoded < 3*sent {
		t.Errorf("the player decoded %d of the %d frames sent in %.1f s, want ≥ 3/4 (framesDecoded %d → %d)",
			decoded, sent, secs, first.FramesDecoded, last.FramesDecoded)
	}
	if last.FreezeCount > 3 {
		t.Errorf("freezeCount %d, want ≤ 3", last.FreezeCount)
	}
	if n := twccSent(t, api); n == 0 {
		t.Errorf("Fanout sent no transport-wide feedback")
	} else {
		netnsResult("twccFeedbacks", n)
	}
	if maxTarget <= 1e6 && !climbedAfterBackoff(samples) {
		t.Errorf("the publisher's targetBitrate peaked at %.0f kbps, want > 1000 (or a ≥ 3× climb after an early back-off)", maxTarget/1000)
	}
}

// sampleChromium reads the page's stats every second for 12–40 s, until
// the publisher's target bitrate has passed 1.2 Mbps.
func sampleChromium(t *testing.T, ctx context.Context) ([]chromiumQuality, float64) {
	var samples []chromiumQuality
	begin := time.Now()
	var maxTarget float64
	for time.Since(begin) < 40*time.Second {
		time.Sleep(time.Second)
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](chromiumQualityJS, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		var q chromiumQuality
		if err := json.Unmarshal([]byte(raw), &q); err != nil {
			t.Fatal(err)
		}
		if q.Error != "" {
			t.Fatalf("page: %s", q.Error)
		}
		q.at = time.Now()
		samples = append(samples, q)
		maxTarget = max(maxTarget, q.TargetBitrate)
		t.Logf("t=%2ds estimate %.0f kbps, target %.0f kbps, sent %d, decoded %d, freezes %d, NACKs %d, lost %d", len(samples),
			q.AvailableBitrate/1000, q.TargetBitrate/1000, q.FramesSent, q.FramesDecoded, q.FreezeCount, q.NACKCount, q.PacketsLost)
		if len(samples) >= 12 && maxTarget > 1.2e6 {
			break
		}
	}
	return samples, maxTarget
}

// twccSent reads Fanout's count of transport-wide feedback packets sent.
func twccSent(t *testing.T, api string) uint64 {
	resp, err := http.Get(api + "/api/v1/summaries")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Fanout struct { // Fanout's own counters, beside SRS's data.self and data.system
				Fastpath struct {
					Total struct{ TWCCOut uint64 }
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Data.Fanout.Fastpath.Total.TWCCOut
}

// chromiumInNamespace starts headless Chromium (this process runs in a
// namespace, so its candidates are the namespace's addresses).
func chromiumInNamespace(t *testing.T) (context.Context, func()) {
	var out lockedBuffer
	opts, profile := chromiumOptions(t, &out) // no loopback flag: the namespace has a veth address
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancelAlloc()
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	return ctx, func() {
		_, _ = chromedp.Run(ctx, chromedp.Evaluate[bool]("closeAll()"))
		cancelTab()
		cancelAlloc()
		checkNoChromium(t, profile)
		if t.Failed() && strings.TrimSpace(out.String()) != "" {
			t.Logf("browser output:\n%s", out.String())
		}
	}
}

// climbedAfterBackoff reports whether Chrome's target, after its lowest
// point past the first 3 s, rose at least 3×: the delay-based climb that
// only transport-wide feedback drives. Under the test's random 5 % loss,
// Chrome 156's loss-based estimator sometimes backs off in the first
// seconds and then caps the estimate near 0.7 Mbps (seen in 2 of 6 runs,
// issue 15 note), so 1 Mbps alone is a coin toss, not a check of Fanout.
func climbedAfterBackoff(samples []chromiumQuality) bool {
	low, high := 0.0, 0.0
	for i, q := range samples {
		if i < 3 || q.TargetBitrate == 0 {
			continue
		}
		if low == 0 || q.TargetBitrate < low {
			low, high = q.TargetBitrate, q.TargetBitrate
		}
		high = max(high, q.TargetBitrate)
	}
	return low > 0 && high >= 3*low
}
