package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// staticLocator is the tests' relay.Locator: stream name → owner base URL.
type staticLocator struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *staticLocator) Locate(_ context.Context, _, _, stream string) (string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.m[stream]
	return u, ok, nil
}

func (l *staticLocator) set(stream, owner string) {
	l.mu.Lock()
	l.m[stream] = owner
	l.mu.Unlock()
}

// startRelayNode runs a Fanout whose relays ask loc for owners.
func startRelayNode(t testing.TB, loc *staticLocator) *Server {
	t.Helper()
	cfg, err := conf.Parse("test.conf", []byte(testConfig), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0",
		Relay: RelayOptions{Locator: loc, Grace: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// base is a node's base URL as a Locator names it.
func (s *Server) base() string { return "http://" + s.APIAddr().String() }

// playersOn starts n WHEP players of query on srv.
func playersOn(t testing.TB, srv *Server, query string, n int) []*testPlayer {
	t.Helper()
	ps := make([]*testPlayer, n)
	for i := range ps {
		ps[i] = newTestPlayer(t, srv, query)
		t.Cleanup(func() { _ = ps[i].pc.Close() })
	}
	return ps
}

// checkExact fails unless p received, from its first unit that sent has,
// exactly the units sent after it (or, cut, a prefix of them, with no
// gap); it returns how many it compared.
func checkExact(t testing.TB, name string, sent [][32]byte, p *testPlayer, cut bool) int {
	t.Helper()
	got, opus := p.received()
	start := indexOf(sent, got)
	if start == nil {
		t.Errorf("%s: none of %d received access units matches a sent one", name, len(got))
		return 0
	}
	want, recv := sent[start.sent:], got[start.got:]
	if len(recv) != len(want) && !(cut && len(recv) < len(want)) {
		t.Errorf("%s: received %d access units from #%d, publisher sent %d", name, len(recv), start.sent, len(want))
	}
	for j := range min(len(recv), len(want)) {
		if recv[j] != want[j] {
			t.Errorf("%s: access unit %d differs", name, start.sent+j)
			return j
		}
	}
	if opus < 50 {
		t.Errorf("%s: only %d opus packets", name, opus)
	}
	if s := p.pc.ConnectionState(); !cut && s != webrtc.PeerConnectionStateConnected {
		t.Errorf("%s: %v", name, s)
	}
	return min(len(recv), len(want))
}

// streamPlayers returns the players a node's stream has.
func streamPlayers(srv *Server, stream string) int {
	return srv.ctl.Players("__defaultVhost__", "live", stream)
}

// TestRelayEdgesByteExact: a stream published on A and played by three
// players on each of B and C, both pulling from A, reaches every player
// byte-exact through one relay per edge; closing B leaves C's players
// untouched.
func TestRelayEdgesByteExact(t *testing.T) {
	h264, ogg := mediaFiles(t)
	a := startTestServer(t, "")
	loc := &staticLocator{m: map[string]string{"edge": a.base()}}
	b, c := startRelayNode(t, loc), startRelayNode(t, loc)
	q := "app=live&stream=edge"
	pub := newTestPublisher(t, a, q)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	time.Sleep(300 * time.Millisecond)
	onB, onC := playersOn(t, b, q, 3), playersOn(t, c, q, 3)
	// A sees one player per edge, however many players each edge has.
	if n := streamPlayers(a, "edge"); n != 2 {
		t.Errorf("A has %d players of the stream, want 2 (one relay per edge)", n)
	}
	for _, e := range []*Server{b, c} {
		if st := e.RelayStats(); st.Open != 1 || st.Opened != 1 {
			t.Errorf("edge relays: %+v, want one open", st)
		}
	}
	time.Sleep(2 * time.Second)
	b.Close() // C's players, pulling from A, must not notice
	<-done
	time.Sleep(500 * time.Millisecond)
	sent := pub.sentAUs()
	if len(sent) < 150 {
		t.Fatalf("publisher sent only %d access units", len(sent))
	}
	for i, p := range onC {
		n := checkExact(t, fmt.Sprintf("C player %d", i), sent, p, false)
		t.Logf("C player %d: %d/%d access units byte-exact", i, n, len(sent))
	}
	for i, p := range onB {
		if n := checkExact(t, fmt.Sprintf("B player %d", i), sent, p, true); n < 30 {
			t.Errorf("B player %d: %d access units before B closed", i, n)
		}
	}
	if st := c.RelayStats(); st.Reconnects != 0 || st.Packets == 0 {
		t.Errorf("C relay: %+v", st)
	}
}
