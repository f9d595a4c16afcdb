//go:build soak

package node

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// Run with `make soak DURATION=60m` (FANOUT_SOAK_DURATION; default 3m).
// FANOUT_SOAK_REPUBLISH sets how often the publisher is replaced (3m).

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// TestSoakChurn is the long churn: in a private network namespace whose
// UDP loses 2 % of datagrams (nftables), one pion publisher (replaced
// every FANOUT_SOAK_REPUBLISH) feeds two pion players with NACK while
// players join and leave without pause: WHEP sessions without pause (one
// in ten vanishing without DELETE, one in fifty bound over TCP), real pion
// players one after another (ICE, DTLS, video; one in four vanishing
// without DELETE) and, each minute, ten fanout-bench subscribers for 15 s. Every minute the churn pauses and the
// goroutines, heap, open files and sessions must be back at the baseline;
// at the end each live player must have reassembled ≥ 95 % of the access
// units sent byte-exact (every unit is unique: an SEI carries its number).
func TestSoakChurn(t *testing.T) {
	if !inPrivateNetns(t, "nft add table inet lossy",
		"nft add chain inet lossy out '{ type filter hook output priority 0; }'",
		"nft add rule inet lossy out meta l4proto udp numgen random mod 100 lt 2 drop") {
		return
	}
	dur := envDuration("FANOUT_SOAK_DURATION", 3*time.Minute)
	every := envDuration("FANOUT_SOAK_REPUBLISH", 3*time.Minute)
	h264, ogg := mediaFiles(t)
	srv := startWithTCP(t, "max_connections 100000;\n"+strings.Replace(testConfig, "stun_timeout 30;", "stun_timeout 5;", 1))
	q := "app=live&stream=soak"
	players := []*recPlayer{newRecPlayer(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whep/?"+q)),
		newRecPlayer(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whep/?"+q))}
	got := []map[[32]byte]bool{{}, {}}
	var sent [][32]byte
	gen := startGeneration(t, srv, q, h264, ogg)
	time.Sleep(2 * time.Second)
	whep := srv.url("/rtc/v1/whep/?" + q)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var total soakTotals
	first := measure(srv)
	t.Logf("at start: %v", first)
	// A warm-up minute of the same churn first: pools and caches grow to
	// their working size once, and the baseline is taken after it.
	soakMinute(t, srv, whep, 0, time.Now().Add(time.Minute), rng, &total)
	waitSessionsWithin(t, srv, first.sessions, 20*time.Second)
	base := measure(srv)
	t.Logf("baseline after the warm-up minute: %v", base)
	heapProfile(t, "start")
	start, lastPub := time.Now(), time.Now()
	for minute := 1; time.Since(start) < dur; minute++ {
		soakMinute(t, srv, whep, minute, start.Add(time.Duration(minute)*time.Minute), rng, &total)
		u, ok := settled(srv, base, 20*time.Second)
		counts, _ := srv.ctl.Stats()
		t.Logf("minute %d: %v; %d sessions created so far", minute, u, counts.SessionsCreated)
		if !ok {
			t.Errorf("minute %d: not back at the baseline %v", minute, base)
		}
		for i, p := range players {
			keepAUs(p, got[i])
		}
		if time.Since(lastPub) >= every && time.Since(start) < dur {
			sent = append(sent, gen.stop(t, srv)...)
			gen, lastPub = startGeneration(t, srv, q, h264, ogg), time.Now()
			t.Logf("minute %d: republished", minute)
		}
	}
	sent = append(sent, gen.stop(t, srv)...)
	time.Sleep(time.Second)
	for i, p := range players {
		keepAUs(p, got[i])
		n := 0
		for _, h := range sent {
			if got[i][h] {
				n++
			}
		}
		ratio := 100 * float64(n) / float64(len(sent))
		t.Logf("player %d: %d of %d access units intact (%.2f %%)", i, n, len(sent), ratio)
		if ratio < 95 {
			t.Errorf("player %d: %.2f %% intact, want ≥ 95 %%", i, ratio)
		}
	}
	fs := srv.fp.Stats()
	t.Logf("the 2 %% loss at work: %d NACKs sent to publishers, %d retransmissions served to players", fs.NACKOut, fs.NACKServed)
	t.Logf("churn: %d live players joined (%d vanished without DELETE), %d fanout-bench subscriber sessions",
		total.joined, total.vanished, total.benchSubs)
	t.Logf("start: %v (after the warm-up minute; at the very start %v)", base, first)
	t.Logf("end:   %v", measure(srv))
	heapProfile(t, "end")
}

// generation is one publisher streaming the looped files until stopped.
type generation struct {
	pub    *testPublisher
	cancel context.CancelFunc
	done   chan struct{}
}

func startGeneration(t *testing.T, srv *Server, q, h264, ogg string) *generation {
	pub := newQualityPublisher(t, qualityPeer(t, netip.Addr{}), srv.url("/rtc/v1/whip/?"+q))
	pub.unique = true
	ctx, cancel := context.WithCancel(context.Background())
	g := &generation{pub: pub, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for ctx.Err() == nil {
			pub.stream(ctx, t, h264, ogg)
		}
	}()
	return g
}

// stop ends the stream (DELETE) and returns what was sent.
func (g *generation) stop(t *testing.T, srv *Server) [][32]byte {
	g.cancel()
	<-g.done
	time.Sleep(500 * time.Millisecond) // the last units and their retransmissions
	if code, _, body := httpDo(t, http.MethodDelete, srv.url(g.pub.res.Location), nil, ""); code != http.StatusOK {
		t.Errorf("DELETE publisher: %d %s", code, body)
	}
	_ = g.pub.pc.Close()
	return g.pub.sentAUs()
}

// keepAUs adds the player's reassembled units to got and drops the
// packets behind all but the last second, so a long soak's players do
// not grow the heap.
func keepAUs(p *recPlayer, got map[[32]byte]bool) {
	for h := range p.accessUnits() {
		got[h] = true
	}
	p.mu.Lock()
	if n := len(p.video); n > 300 {
		p.video = append([]recPacket(nil), p.video[n-300:]...)
	}
	p.audio = nil
	p.mu.Unlock()
}
