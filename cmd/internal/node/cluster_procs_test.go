package node

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/bridge/transcode"
	"github.com/fanout/fanout/control/cluster/redistest"
)

// TestClusterProcEdges: three Fanout processes and one redis-server. A
// stream published on A reaches three players on each of B and C
// byte-exact through one relay per edge (A has the publisher and two
// players: the relays); B is killed (SIGKILL) and C's players, pulling
// from A, do not notice.
func TestClusterProcEdges(t *testing.T) {
	rd := redistest.New(t)
	a, b, c := startProc(t, rd, "a", procVhost, ""), startProc(t, rd, "b", procVhost, ""), startProc(t, rd, "c", procVhost, "")
	pub, done := publishProc(t, a, "edges", 1)
	waitProcOwner(t, b, "edges", "a", 3*time.Second)
	onB, onC := b.players("edges", 3), c.players("edges", 3)
	if n := a.clients("edges"); n != 3 {
		t.Errorf("A's stream has %d clients, want 3: the publisher and one relay per edge", n)
	}
	checkOneRelay(t, b)
	checkOneRelay(t, c)
	if rs := c.cluster().Data.Relays; len(rs) != 1 || rs[0].Upstream != a.base() || !rs[0].Connected {
		t.Errorf("C's /api/v1/cluster relays: %+v", rs)
	}
	time.Sleep(time.Second)
	b.kill()
	<-done
	drained(onC...)
	sent := pub.sentAUs()
	for i, p := range onC {
		n := checkExact(t, fmt.Sprintf("C player %d", i), sent, p, false)
		t.Logf("C player %d: %d/%d access units byte-exact", i, n, len(sent))
	}
	for i, p := range onB {
		if n := checkExact(t, fmt.Sprintf("B player %d", i), sent, p, true); n < 30 {
			t.Errorf("B player %d: %d access units before B was killed", i, n)
		}
	}
	if r := c.metric(`fanout_cluster_relay_events_total{event="reconnect"}`); r != "0" {
		t.Errorf("C's relay reconnected %s times", r)
	}
}

// TestClusterProcTreeRedirect: A is full (max_players 1, redirect on)
// once B's relay plays from it, so C's relay pull is sent (307) to B,
// which relays in turn: A → B → C delivers byte-exact. A pion player's
// WHEP POST to full A is sent to another node and plays there.
func TestClusterProcTreeRedirect(t *testing.T) {
	rd := redistest.New(t)
	a := startProc(t, rd, "a", procVhost, "redirect on; max_players 1;")
	b, c := startProc(t, rd, "b", procVhost, "redirect on;"), startProc(t, rd, "c", procVhost, "redirect on;")
	pub, done := publishProc(t, a, "tree", 1)
	waitProcOwner(t, c, "tree", "a", 3*time.Second)
	onB := b.players("tree", 1) // B's relay takes A's one place
	onC := c.players("tree", 3) // C's relay is sent to B
	if na, nb := a.clients("tree"), b.clients("tree"); na != 2 || nb != 3 {
		t.Errorf("clients: A %d (want 2: publisher, B's relay), B %d (want 3: relay publisher, player, C's relay)", na, nb)
	}
	if r := a.metric(`fanout_cluster_redirects_total{kind="play"}`); r != "1" {
		t.Errorf("A's play redirects: %q, want 1 (C's relay)", r)
	}
	if rs := c.cluster().Data.Relays; len(rs) != 1 || rs[0].Upstream != b.base() || !rs[0].Connected {
		t.Errorf("C's relays: %+v, want one pulling from B", rs)
	}
	// A player sent away from full A plays on the least loaded other node.
	resp := postNoFollow(t, a.whep("tree"), offerSDP(t))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect ||
		loc != b.whep("tree") && loc != c.whep("tree") {
		t.Fatalf("WHEP to full A: %d Location %q", resp.StatusCode, loc)
	}
	redirected := newTestPlayerOn(t, a.whep("tree"), webrtc.NetworkTypeUDP4) // net/http follows the 307
	t.Cleanup(func() { _ = redirected.pc.Close() })
	<-done
	drained(append(append(onC, onB...), redirected)...)
	sent := pub.sentAUs()
	for i, p := range append(onC, onB...) {
		n := checkExact(t, fmt.Sprintf("tree player %d", i), sent, p, false)
		t.Logf("tree player %d: %d/%d access units byte-exact", i, n, len(sent))
	}
	if n := checkExact(t, "redirected player", sent, redirected, false); n < 30 {
		t.Errorf("redirected player: %d access units", n)
	}
	if n := a.clients("tree"); n != 2 {
		t.Errorf("A's stream has %d clients after the redirected player joined, want 2", n)
	}
}

// TestClusterProcOwnerDies: A (the owner) is killed while B and C play;
// the stream is republished on C and B's players, never reconnected, get
// media again from C, whose node the owner key names.
func TestClusterProcOwnerDies(t *testing.T) {
	rd := redistest.New(t)
	a, b, c := startProc(t, rd, "a", procVhost, ""), startProc(t, rd, "b", procVhost, ""), startProc(t, rd, "c", procVhost, "")
	publishProc(t, a, "moving", 1)
	waitProcOwner(t, b, "moving", "a", 3*time.Second)
	onB, onC := b.players("moving", 2), c.players("moving", 1)
	for _, p := range append(onB, onC...) {
		waitAUs(t, p, 30, 5*time.Second)
	}
	a.kill()
	killed := time.Now()
	// A's keys expire within a TTL; C's relay lets go once its upstream fails.
	waitProcOwner(t, c, "moving", "", 2*clusterTTL)
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if rs := c.cluster().Data.Relays; len(rs) == 0 || !rs[0].Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("C's relay still connected 8 s after A died")
		}
	}
	before := []int{onB[0].count(), onB[1].count()}
	republished := time.Now()
	publishProc(t, c, "moving", 2)
	waitProcOwner(t, b, "moving", "c", 3*time.Second)
	for i, p := range onB {
		waitAUs(t, p, before[i]+30, 10*time.Second)
		if s := p.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
			t.Errorf("B player %d: %v", i, s)
		}
	}
	t.Logf("A killed → republished on C after %v; B's players had 30 more access units %v after the republish",
		republished.Sub(killed).Round(time.Millisecond), time.Since(republished).Round(time.Millisecond))
	if r := b.cluster().Data.Relays; len(r) != 1 || r[0].Upstream != c.base() || !r[0].Connected {
		t.Errorf("B's relays: %+v, want one from C", r)
	}
}

// TestClusterProcRedisOutage: with redis-server down, what plays keeps
// playing (a local player on A, a relayed one on B, and a new player of
// B's relayed stream); a new cross-node play answers 503 with Retry-After,
// as does a WHIP (see cluster.go). When redis-server comes back empty, the
// registry is whole within one TTL and nothing was stopped.
func TestClusterProcRedisOutage(t *testing.T) {
	rd := redistest.New(t)
	a, b := startProc(t, rd, "a", procVhost, ""), startProc(t, rd, "b", procVhost, "")
	publishProc(t, a, "outage", 3)
	publishProc(t, a, "other", 3)
	waitProcOwner(t, b, "other", "a", 3*time.Second)
	players := append(a.players("outage", 1), b.players("outage", 1)...)
	for _, p := range players {
		waitAUs(t, p, 10, 5*time.Second)
	}
	rd.Stop()
	for deadline := time.Now().Add(2 * clusterTTL); b.cluster().Data.Healthy; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("B still healthy with redis-server down")
		}
	}
	for _, u := range []string{b.whep("other"), b.whip("new")} {
		resp := postNoFollow(t, u, offerSDP(t))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s with redis down: %d Retry-After %q, want 503 with Retry-After", u, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	players = append(players, b.players("outage", 1)...) // B has it: served from its relay
	before := make([]int, len(players))
	for i, p := range players {
		before[i] = p.count()
	}
	time.Sleep(time.Second)
	for i, p := range players {
		if p.count() < before[i]+15 {
			t.Errorf("player %d stalled with redis down: %d → %d access units in 1 s", i, before[i], p.count())
		}
	}
	rd.Start()
	restarted := time.Now()
	for deadline := restarted.Add(clusterTTL); ; time.Sleep(50 * time.Millisecond) {
		st := b.cluster().Data
		if st.Healthy && len(st.Nodes) == 2 && b.owner("outage") == "a" && b.owner("other") == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not whole %v after redis-server restarted: %+v", clusterTTL, st)
		}
	}
	t.Logf("registry whole %v after redis-server restarted (TTL %v)", time.Since(restarted).Round(time.Millisecond), clusterTTL)
	for i, p := range players {
		if s := p.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected || p.count() < before[i]+15 {
			t.Errorf("player %d after the outage: %v, %d access units", i, s, p.count())
		}
	}
	if n := strings.Count(b.log.String(), "relay connected"); n != 1 {
		t.Errorf("B's relay connected %d times, want 1 (never redialled)", n)
	}
}

// TestClusterProcBridgePlayers: RTMP, HTTP-FLV and HLS players on edge B
// of a stream published (WebRTC) on A are served from the relayed stream:
// their requests, all at once, open one relay, which B bridges
// (rtc_to_rtmp) to its RTMP server, HTTP-FLV and HLS.
func TestClusterProcBridgePlayers(t *testing.T) {
	if !transcode.Available() {
		t.Skip("rtc_to_rtmp's Opus→AAC needs the cgo transcoder (built with notranscode or without cgo)")
	}
	rd := redistest.New(t)
	a, b := startProc(t, rd, "a", procBridgeVhost, ""), startProc(t, rd, "b", procBridgeVhost, "")
	publishProc(t, a, "bridged", 3)
	waitProcOwner(t, b, "bridged", "a", 3*time.Second)
	began := time.Now()
	probeAll(t, 20*time.Second,
		fmt.Sprintf("http://127.0.0.1:%d/live/bridged.flv", b.http),
		fmt.Sprintf("http://127.0.0.1:%d/live/bridged.m3u8", b.http),
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/bridged", b.rtmp))
	t.Logf("three bridge players probed in %v", time.Since(began).Round(time.Millisecond))
	if n := a.clients("bridged"); n != 2 {
		t.Errorf("A's stream has %d clients, want 2: the publisher and B's relay", n)
	}
	checkOneRelay(t, b)
}
