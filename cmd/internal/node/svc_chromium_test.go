package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// TestSVCChromium: headless Chromium publishes VP9 L1T3 through
// whip.html?svc=L1T3&codec=vp9; a pion player with ?temporal=0 gets only
// temporal layer 0 (read from Chromium's own VP9 payload descriptors),
// about a quarter of the frames of an uncapped player, with consecutive
// sequence numbers.
func TestSVCChromium(t *testing.T) {
	b := startPagesBrowser(t)
	srv := startTestServer(t, "")
	pub := b.tab(t, "publisher", fmt.Sprintf("http://%s/players/whip.html?autostart=true&api=%d&stream=svc-chromium&svc=L1T3&codec=vp9",
		srv.HTTPAddr(), srv.APIAddr().Port()))
	b.waitAll(t, 15*time.Second, map[string]context.Context{"pub": pub}, func(s pageStats) bool {
		return s.State == "connected" && s.FramesSent > 0
	})
	q := "app=live&stream=svc-chromium"
	low, all := newRTPPlayer(t, srv, q+"&temporal=0"), newRTPPlayer(t, srv, q)
	// About 4 s of Chromium's 20 frames/s, waited for rather than slept:
	// a loaded machine slows Chromium's encoder, not Fanout.
	waitUntil(t, 15*time.Second, "80 frames at the uncapped player", func() bool { return frames(all.received()) >= 80 })
	lowPkts, allPkts := low.received(), all.received()
	// Compare the players over the frames both could get: the capped one
	// connected first, and under load its head start alone moved the
	// ratio.
	if len(lowPkts) == 0 {
		t.Fatal("the capped player got nothing")
	}
	from, to := allPkts[0].Timestamp, allPkts[len(allPkts)-1].Timestamp
	if ts := lowPkts[0].Timestamp; int32(ts-from) > 0 { // RTP time wraps
		from = ts
	}
	if ts := lowPkts[len(lowPkts)-1].Timestamp; int32(ts-to) < 0 {
		to = ts
	}
	lowFrames, allFrames := framesIn(lowPkts, from, to), framesIn(allPkts, from, to)
	if lowFrames < 10 || allFrames < 40 {
		t.Fatalf("frames in the common window: capped %d, all %d", lowFrames, allFrames)
	}
	tids := map[uint8]int{}
	for _, pk := range allPkts {
		if len(pk.Payload) > 0 {
			tids[vp9PacketTID(pk)]++
		}
	}
	if len(tids) < 3 {
		t.Fatalf("Chromium's VP9 carries temporal layers %v, want 0, 1 and 2", tids)
	}
	for i, pk := range lowPkts {
		if tid := vp9PacketTID(pk); tid != 0 && len(pk.Payload) > 0 { // padding-only packets carry no descriptor
			t.Fatalf("capped player's packet %d of %d is of temporal layer %d: % x", i, len(lowPkts), tid, pk.Payload[:min(12, len(pk.Payload))])
		}
	}
	checkContinuous(t, "capped player", lowPkts)
	if r := float64(lowFrames) / float64(allFrames); r < 0.15 || r > 0.4 {
		t.Errorf("capped player got %d frames, uncapped %d: ratio %.2f, want about 1/4", lowFrames, allFrames, r)
	}
	t.Logf("Chromium VP9 L1T3: packets per temporal layer %v; temporal=0 player %d frames, uncapped %d", tids, lowFrames, allFrames)
}

func vp9PacketTID(pk rtp.Packet) uint8 {
	var d codecs.VP9Packet
	if _, err := d.Unmarshal(pk.Payload); err != nil || !d.L {
		return 0xff
	}
	return d.TID
}

// framesIn counts the frames of pkts whose timestamp is in [from, to].
func framesIn(pkts []rtp.Packet, from, to uint32) int {
	n := 0
	for _, pk := range pkts {
		if pk.Marker && int32(pk.Timestamp-from) >= 0 && int32(to-pk.Timestamp) >= 0 {
			n++
		}
	}
	return n
}

func frames(pkts []rtp.Packet) int {
	n := 0
	for _, pk := range pkts {
		if pk.Marker {
			n++
		}
	}
	return n
}
