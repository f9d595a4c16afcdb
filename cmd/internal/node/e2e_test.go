package node

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestPublishPlayByteExact is the foundation's proof: a pion publisher of
// H.264 + Opus, three pion WHEP players (one before the publisher), every
// access unit from the player's first onwards arrives byte-exact.
func TestPublishPlayByteExact(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	q := "app=live&stream=exact"
	early := newTestPlayer(t, srv, q)
	pub := newTestPublisher(t, srv, q)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	time.Sleep(1200 * time.Millisecond)
	players := []*testPlayer{early, newTestPlayer(t, srv, q), newTestPlayer(t, srv, q)}
	<-done
	time.Sleep(500 * time.Millisecond)

	sent := pub.sentAUs()
	if len(sent) < 150 {
		t.Fatalf("publisher sent only %d access units", len(sent))
	}
	for i, p := range players {
		got, opus := p.received()
		start := indexOf(sent, got)
		if start == nil {
			t.Fatalf("player %d: none of %d received access units matches a sent one", i, len(got))
		}
		want := sent[start.sent:]
		recv := got[start.got:]
		if len(recv) != len(want) {
			t.Errorf("player %d: received %d access units from #%d, publisher sent %d", i, len(recv), start.sent, len(want))
		}
		for j := range min(len(recv), len(want)) {
			if recv[j] != want[j] {
				t.Fatalf("player %d: access unit %d differs", i, start.sent+j)
			}
		}
		if opus < 100 {
			t.Errorf("player %d: only %d opus packets", i, opus)
		}
		if len(p.ssrcs) != 2 {
			t.Errorf("player %d: %d SSRCs, want 2", i, len(p.ssrcs))
		}
		t.Logf("player %d: %d/%d access units byte-exact from #%d, %d opus packets", i, len(recv), len(sent), start.sent, opus)
	}
	if players[0].received2(sent) != 0 {
		t.Errorf("the player that joined first missed the start")
	}
	for _, loc := range append([]string{pub.res.Location}, players[0].res.Location, players[1].res.Location, players[2].res.Location) {
		if code, _, body := httpDo(t, http.MethodDelete, srv.url(loc), nil, ""); code != http.StatusOK {
			t.Errorf("DELETE %s: %d %s", loc, code, body)
		}
	}
	waitSessions(t, srv, 0)
}

type matchStart struct{ sent, got int }

// indexOf finds the first received access unit that the publisher sent (a
// player that joins mid-frame sees a partial first unit).
func indexOf(sent, got [][32]byte) *matchStart {
	pos := map[[32]byte]int{}
	for i, h := range sent {
		if _, ok := pos[h]; !ok {
			pos[h] = i
		}
	}
	for g, h := range got {
		if i, ok := pos[h]; ok {
			return &matchStart{sent: i, got: g}
		}
	}
	return nil
}

// received2 returns the index of the first sent unit this player got.
func (p *testPlayer) received2(sent [][32]byte) int {
	got, _ := p.received()
	if m := indexOf(sent, got); m != nil {
		return m.sent
	}
	return -1
}

func waitSessions(t testing.TB, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, live := srv.ctl.Stats()
		if live == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions live, want %d", live, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
