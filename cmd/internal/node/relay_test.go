package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
	"github.com/fanout/fanout/control/relay"
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
	return srv.ctl.StreamPlayers("__defaultVhost__", "live", stream)
}

// TestRelayEdgeCacheAndGrace: the relay's own mechanics on one edge (the
// cluster's must-shows, several edges byte-exact and their faults, run
// as separate processes in cluster_procs_test.go): players' PLIs go
// upstream as at most one per 500 ms, a late player starts from the
// edge's own keyframe cache, the relay is listed and exported, its
// players get every access unit byte-exact, and the relay closes the
// grace period after the last player left.
func TestRelayEdgeCacheAndGrace(t *testing.T) {
	h264, ogg := mediaFiles(t)
	a := startTestServer(t, "")
	c := startRelayNode(t, &staticLocator{m: map[string]string{"edge": a.base()}})
	q := "app=live&stream=edge"
	pub := newTestPublisher(t, a, q)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	began := time.Now()
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	time.Sleep(300 * time.Millisecond)
	onC := playersOn(t, c, q, 2)
	if n := streamPlayers(a, "edge"); n != 1 {
		t.Errorf("A has %d players of the stream, want 1 (the edge's relay)", n)
	}
	checkPLIs(t, a, c, onC)
	checkRelayAPI(t, c, a)
	// A late player on C starts at once from C's own keyframe cache: its
	// first access unit is the keyframe before it joined.
	// Mid-GOP (the test media is 30 fps, a keyframe each second).
	time.Sleep((1500*time.Millisecond - time.Since(began)%time.Second) % time.Second)
	joinedAt := int(time.Since(began).Seconds() * 30) // before its POST
	late := playersOn(t, c, q, 1)[0]
	onC = append(onC, late)
	<-done
	drained(onC...)
	sent := pub.sentAUs()
	if len(sent) < 150 {
		t.Fatalf("publisher sent only %d access units", len(sent))
	}
	for i, p := range onC {
		n := checkExact(t, fmt.Sprintf("C player %d", i), sent, p, false)
		t.Logf("C player %d: %d/%d access units byte-exact", i, n, len(sent))
	}
	if first := late.received2(sent); first < 0 || first%30 != 0 || first >= joinedAt {
		t.Errorf("late player on C joined at access unit ~%d, started at %d: not from C's keyframe cache", joinedAt, first)
	} else {
		t.Logf("late player on C joined at access unit ~%d, started at %d (the cached keyframe)", joinedAt, first)
	}
	if st := c.RelayStats(); st.Reconnects != 0 || st.Packets == 0 || st.Opened != 1 {
		t.Errorf("C relay: %+v", st)
	}
	leaveAndWaitGrace(t, a, c, onC)
}

// tailExact fails unless the units p received after its first from form,
// from their first that sent has, exactly the rest of sent; it returns
// how many it compared.
func tailExact(t testing.TB, name string, sent [][32]byte, p *testPlayer, from int) int {
	t.Helper()
	got, _ := p.received()
	got = got[min(from, len(got)):]
	start := indexOf(sent, got)
	if start == nil {
		t.Errorf("%s: none of %d access units received since #%d matches a sent one", name, len(got), from)
		return 0
	}
	want, recv := sent[start.sent:], got[start.got:]
	if len(recv) != len(want) {
		t.Errorf("%s: received %d access units from #%d, publisher sent %d", name, len(recv), start.sent, len(want))
	}
	for j := range min(len(recv), len(want)) {
		if recv[j] != want[j] {
			t.Errorf("%s: access unit %d differs", name, start.sent+j)
			return j
		}
	}
	if s := p.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Errorf("%s: %v", name, s)
	}
	return min(len(recv), len(want))
}

// drained waits (≤ 3 s) until the players have received nothing new for
// 500 ms: the publisher is done and the relays have drained.
func drained(ps ...*testPlayer) {
	last, quiet := -1, time.Now()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n := 0
		for _, p := range ps {
			n += p.count()
		}
		if n != last {
			last, quiet = n, time.Now()
		} else if time.Since(quiet) >= 500*time.Millisecond {
			return
		}
	}
}

// count is how many access units p has received.
func (p *testPlayer) count() int {
	got, _ := p.received()
	return len(got)
}

// TestRelayTreeRepublishMove: A → B → C delivers byte-exact; a republish
// on A reaches B's and C's players without them reconnecting; when B goes
// away and the Locator names A, C redials A and its players, still
// connected, get media again after a gap.
func TestRelayTreeRepublishMove(t *testing.T) {
	h264, ogg := mediaFiles(t)
	a := startTestServer(t, "")
	b := startRelayNode(t, &staticLocator{m: map[string]string{"tree": a.base()}})
	locC := &staticLocator{m: map[string]string{"tree": b.base()}}
	c := startRelayNode(t, locC)
	q := "app=live&stream=tree"
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// A → B → C, byte-exact.
	pub := newTestPublisher(t, a, q)
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	time.Sleep(300 * time.Millisecond)
	onC, onB := playersOn(t, c, q, 3), playersOn(t, b, q, 1)
	if na, nb := streamPlayers(a, "tree"), streamPlayers(b, "tree"); na != 1 || nb != 2 {
		t.Errorf("players of the stream: A %d (want 1: B's relay), B %d (want 2: C's relay and B's player)", na, nb)
	}
	<-done
	drained(append(onC, onB...)...)
	sent := pub.sentAUs()
	for i, p := range append(onC, onB...) {
		n := checkExact(t, fmt.Sprintf("player %d", i), sent, p, false)
		t.Logf("tree player %d: %d/%d access units byte-exact", i, n, len(sent))
	}

	// Republish on A: the same players, the same relays, media again.
	if code, _, body := httpDo(t, "DELETE", a.url(pub.res.Location), nil, ""); code != 200 {
		t.Fatalf("unpublish: %d %s", code, body)
	}
	_ = pub.pc.Close()
	before := make([]int, 4)
	all := append(append([]*testPlayer(nil), onC...), onB...)
	for i, p := range all {
		before[i] = p.count()
	}
	pub2 := newTestPublisher(t, a, q)
	done = make(chan struct{})
	go func() { pub2.stream(ctx, t, h264, ogg); close(done) }()
	time.Sleep(2 * time.Second)
	for i, p := range all {
		if p.count() <= before[i]+20 {
			t.Errorf("player %d: %d access units after the republish", i, p.count()-before[i])
		}
	}

	// B goes away (what C's players had from it drains); then C's
	// Locator names A: C redials A.
	b.Close()
	drained(onC...)
	moved := make([]int, 3)
	for i, p := range onC {
		moved[i] = p.count()
	}
	locC.set("tree", a.base())
	<-done
	drained(onC...)
	sent2 := pub2.sentAUs()
	for i, p := range onC {
		n := tailExact(t, fmt.Sprintf("C player %d after the move", i), sent2, p, moved[i])
		t.Logf("C player %d: %d access units byte-exact after the move", i, n)
	}
	// One redial at least: B may still answer while it closes.
	if st, rs := c.RelayStats(), c.Relays(); st.Reconnects < 1 || st.Open != 1 || len(rs) != 1 || rs[0].Upstream != a.base() {
		t.Errorf("C relays after the move: %+v %+v, want one open, pulling from A", st, rs)
	}
}

// sendPLI sends a Picture Loss Indication for p's video track.
func sendPLI(t testing.TB, p *testPlayer) {
	t.Helper()
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver() == nil || tr.Receiver().Track() == nil {
			continue
		}
		ssrc := uint32(tr.Receiver().Track().SSRC())
		if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.Errorf("PLI: %v", err)
		}
	}
}

// checkPLIs: 5 rounds of PLIs from the edge's players in ~1 s go to A
// as at most one per 500 ms.
func checkPLIs(t *testing.T, a, b *Server, onB []*testPlayer) {
	t.Helper()
	pliA, pliB := a.fp.Stats().PLIIn, b.RelayStats().KeyframeReqs
	plis := time.Now()
	for range 5 {
		for _, p := range onB {
			sendPLI(t, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond)
	window := time.Since(plis)
	up := b.RelayStats().KeyframeReqs - pliB
	atA := a.fp.Stats().PLIIn - pliA
	for deadline := time.Now().Add(time.Second); atA < up && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		atA = a.fp.Stats().PLIIn - pliA // the last one may be on its way
	}
	if max := uint64(window/relay.KeyframeInterval) + 1; up < 1 || up > max || atA < up {
		t.Errorf("%d player PLIs in %v: %d sent upstream (want 1…%d), %d reached A", 5*len(onB), window, up, max, atA)
	}
	t.Logf("%d player PLIs in %v: %d sent upstream", 5*len(onB), window, up)
}

// checkRelayAPI: C lists its relay and exports the relay series.
func checkRelayAPI(t *testing.T, c, a *Server) {
	t.Helper()
	if rs := c.Relays(); len(rs) != 1 || rs[0].Upstream != a.base() || !rs[0].Connected || rs[0].Stream != "edge" {
		t.Errorf("C's relays: %+v", rs)
	}
	if code, _, body := httpDo(t, "GET", c.url("/metrics"), nil, ""); code != 200 ||
		!strings.Contains(body, "fanout_cluster_relays 1\n") || !strings.Contains(body, "fanout_cluster_relay_bytes_total ") ||
		!strings.Contains(body, `fanout_cluster_relay_events_total{event="opened"} 1`) {
		t.Errorf("C's /metrics (%d) lacks the relay series", code)
	}
}

// leaveAndWaitGrace: when the last player leaves, the relay closes after
// the grace period (1 s) and A's session for it ends.
func leaveAndWaitGrace(t *testing.T, a, c *Server, onC []*testPlayer) {
	t.Helper()
	var left time.Time
	for _, p := range onC {
		// Clocked before the last DELETE goes out, so no grace can have
		// started earlier: clocked after its answer, a slow answer on a
		// loaded machine was counted out of the grace.
		left = time.Now()
		if code, _, body := httpDo(t, "DELETE", c.url(p.res.Location), nil, ""); code != 200 {
			t.Fatalf("DELETE player: %d %s", code, body)
		}
	}
	for c.RelayStats().Open != 0 || streamPlayers(a, "edge") != 0 {
		if time.Since(left) > 4*time.Second {
			t.Fatalf("4 s after the last player left: C relays %+v, A players %d", c.RelayStats(), streamPlayers(a, "edge"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(left); d < 900*time.Millisecond {
		t.Errorf("relay closed %v after the last player left, before the 1 s grace", d)
	}
}
