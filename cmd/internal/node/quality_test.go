package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// Media-quality proofs of issue 3: NACK both ways under 5 % loss each
// way, the keyframe cache's first frame, and continuity across republish.
// (TWCC with Chromium is in quality_chromium_test.go.)

// lossConfig is Fanout's config in the loss tests. UDP GSO is off: nft's
// output hook judges an skb, and a GSO send is one skb for a whole burst,
// so with GSO on the loss would come in bursts instead of per datagram.
const lossConfig = "fastpath { gso off; }\n"

// TestQualityLoss: two namespaces joined by a veth pair, 5 % of the UDP
// each side sends dropped; a pion publisher and three pion players in A,
// Fanout in B. NACK towards the publisher and from the players' history
// must bring at least 99 % of the H.264 access units byte-exact to every
// player (reassembled in sequence order, an unbounded jitter buffer).
func TestQualityLoss(t *testing.T) {
	pair := newNetnsPair(t, 5)
	api := pair.startFanout(t, lossConfig)
	c := pair.startChild(t, pair.A, "TestQualityLossPeers", "FANOUT_NETNS_API="+api, "FANOUT_NETNS_IP="+pair.IPA.String())
	if err := c.wait(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v, _ := c.result(fmt.Sprintf("player%d", i), 0)
		t.Logf("player %d: %s %% of access units byte-exact under 5 %% loss each way", i, v)
	}
}

// TestQualityLossPeers runs in A for TestQualityLoss.
func TestQualityLossPeers(t *testing.T) {
	skipUnlessNetnsChild(t)
	api, ip := netnsEnv(t, "FANOUT_NETNS_API"), netip.MustParseAddr(netnsEnv(t, "FANOUT_NETNS_IP"))
	h264, ogg := gopMedia(t, 30, 8)
	q := "/rtc/v1/whip/?app=live&stream=lossy"
	pub := newQualityPublisher(t, qualityPeer(t, ip), api+q)
	var players []*recPlayer
	for range 3 {
		players = append(players, newRecPlayer(t, qualityPeer(t, ip), api+"/rtc/v1/whep/?app=live&stream=lossy"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	time.Sleep(2 * time.Second) // the last repairs
	sent := pub.sentAUs()
	if len(sent) < 200 {
		t.Fatalf("publisher sent only %d access units", len(sent))
	}
	for i, p := range players {
		pct := delivered(sent, p.accessUnits())
		netnsResult(fmt.Sprintf("player%d", i), strconv.FormatFloat(pct, 'f', 2, 64))
		t.Logf("player %d: %.2f %% of %d access units byte-exact, %d video packets received", i, pct, len(sent), len(p.packets(true)))
		if pct < 99 {
			t.Errorf("player %d: %.2f %% of access units byte-exact, want ≥ 99 %%", i, pct)
		}
	}
	logQuality(t, api)
}

// logQuality logs Fanout's per-session quality counters from the API.
func logQuality(t *testing.T, api string) {
	resp, err := http.Get(api + "/api/v1/clients/")
	if err != nil {
		t.Log(err)
		return
	}
	defer resp.Body.Close()
	var body struct {
		Clients []struct {
			Type    string          `json:"type"`
			Quality json.RawMessage `json:"quality"`
		} `json:"clients"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Log(err)
		return
	}
	for _, c := range body.Clients {
		t.Logf("%s: %s", c.Type, c.Quality)
	}
}

// TestQualityFirstFrame: on a stream with a 2 s GOP, a pion player that
// joins mid-GOP gets its first keyframe at once from the keyframe cache,
// and only at the next IDR without it (the pion publisher ignores PLI).
func TestQualityFirstFrame(t *testing.T) {
	h264, ogg := gopMedia(t, 60, 8)
	times := map[string]time.Duration{}
	for _, mode := range []string{"on", "off"} {
		t.Run("keyframe_cache="+mode, func(t *testing.T) {
			srv := startTestServerConfig(t, fmt.Sprintf(`
listen 1935;
daemon off;
http_api { enabled on; listen 1985; }
rtc_server { enabled on; listen 8000; candidate 127.0.0.1; }
vhost __defaultVhost__ { rtc { enabled on; keyframe_cache %s; } }
`, mode))
			q := "app=live&stream=gop"
			pub := newQualityPublisher(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whip/?"+q))
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); pub.stream(ctx, t, h264, ogg) }()
			defer func() { cancel(); wg.Wait() }()
			time.Sleep(2700 * time.Millisecond) // 0.7 s into the second GOP
			p := newRecPlayer(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whep/?"+q))
			deadline := time.Now().Add(4 * time.Second)
			for p.firstKeyframe().IsZero() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			first := p.firstKeyframe()
			if first.IsZero() {
				t.Fatal("no keyframe within 4 s")
			}
			d := first.Sub(p.post)
			times[mode] = d
			t.Logf("keyframe_cache %s: first keyframe %v after the WHEP POST (connected after %v)", mode,
				d.Round(time.Millisecond), p.conn.Sub(p.post).Round(time.Millisecond))
			if mode == "on" && d > 300*time.Millisecond {
				t.Errorf("first keyframe after %v with the cache, want < 300 ms", d)
			}
		})
	}
	if on, off := times["on"], times["off"]; on != 0 && off != 0 {
		t.Logf("first frame: %v with the keyframe cache, %v without", on.Round(time.Millisecond), off.Round(time.Millisecond))
		if off < 2*on {
			t.Errorf("without the cache (%v) not clearly slower than with it (%v)", off, on)
		}
	}
}

// TestQualityRepublish: the publisher leaves and another takes the stream;
// the player keeps its session and sees continuous sequence numbers and
// increasing timestamps on both tracks, and the new publisher's pictures.
func TestQualityRepublish(t *testing.T) {
	h264, ogg := gopMedia(t, 30, 2)
	srv := startTestServer(t, "")
	q := "app=live&stream=again"
	pub1 := newQualityPublisher(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whip/?"+q))
	p := newRecPlayer(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whep/?"+q))
	pub1.stream(context.Background(), t, h264, ogg)
	if code, _, body := httpDo(t, http.MethodDelete, srv.url(pub1.res.Location), nil, ""); code != http.StatusOK {
		t.Fatalf("DELETE publisher 1: %d %s", code, body)
	}
	before := len(p.packets(true))
	pub2 := newQualityPublisher(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whip/?"+q))
	pub2.stream(context.Background(), t, h264, ogg)
	time.Sleep(300 * time.Millisecond)
	if st := p.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Fatalf("player %v after the republish", st)
	}
	for _, kind := range []string{"audio", "video"} {
		pkts := p.packets(kind == "video")
		gaps, back := 0, 0
		for i := 1; i < len(pkts); i++ {
			if d := pkts[i].seq - pkts[i-1].seq; d != 1 {
				gaps++
				t.Logf("%s: seq %d → %d at packet %d", kind, pkts[i-1].seq, pkts[i].seq, i)
			}
			if d := int32(pkts[i].ts - pkts[i-1].ts); d < 0 {
				back++
			}
		}
		t.Logf("%s: %d packets across the swap, %d sequence gaps, %d timestamp steps back", kind, len(pkts), gaps, back)
		if gaps != 0 || back != 0 {
			t.Errorf("%s: %d sequence gaps and %d timestamps going back across the republish", kind, gaps, back)
		}
	}
	got := p.accessUnits()
	after := pub2.sentAUs()
	if pct := delivered(after, got); pct < 99 {
		t.Errorf("%.1f %% of the second publisher's access units decoded byte-exact", pct)
	}
	if len(p.packets(true)) <= before {
		t.Errorf("no video from the second publisher")
	}
}
