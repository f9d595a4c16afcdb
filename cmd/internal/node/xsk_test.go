package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestXDPAFXDP (issue 16, part 2): Fanout in namespace B with `xdp_mode
// afxdp` on a two-queue veth and two cores, a pion publisher and three
// pion players in A. Every H.264 access unit reaches every player
// byte-exact; each core's AF_XDP counters show the media went through the
// XSK rings (RX about the RTP packets a player got, TX about three times that,
// no socket fallbacks once the neighbour is known) while ICE and DTLS went
// through the kernel (the shield passed STUN and the sessions' non-media).
// After SIGTERM, and after SIGKILL, no XDP program and no XSK socket
// remains in B.
func TestXDPAFXDP(t *testing.T) {
	pair := newNetnsPairQueues(t, 0, 2)
	conf := fmt.Sprintf("fastpath { cores 2; xdp %s; xdp_mode afxdp; }\n", pair.DevB)
	t.Setenv("FANOUT_TEST_LOG", "1")
	srv := pair.startFanoutChild(t, conf)
	os.Unsetenv("FANOUT_TEST_LOG")
	if !srv.logged("AF_XDP on") || !xdpAttached(t, pair) {
		_ = srv.stop(5 * time.Second)
		t.Fatalf("AF_XDP mode did not come up (log %v)", srv.logged("AF_XDP on"))
	}
	if n := xskSockets(t, pair); n != 2 {
		t.Errorf("%d AF_XDP sockets in %s while serving, want 2 (one per RX queue)", n, pair.B)
	}
	peers := pair.startChild(t, pair.A, "TestXDPAFXDPPeers", "FANOUT_NETNS_API=http://"+netip.AddrPortFrom(pair.IPB, 1985).String(),
		"FANOUT_NETNS_IP="+pair.IPA.String())
	err := peers.wait(60 * time.Second)
	r := peers.floats()
	if err != nil {
		t.Errorf("peers: %v", err)
	}
	if err := srv.stop(10 * time.Second); err != nil {
		t.Errorf("fanout: %v", err)
	}
	t.Logf("a player got %.0f RTP; XSK rx %.0f (core 0 %.0f, core 1 %.0f), tx %.0f (core 0 %.0f, core 1 %.0f); fastpath rx %.0f tx %.0f; fallbacks %.0f, tx dropped %.0f, kicks %.0f; shield pass_stun %.0f pass_session %.0f redirect_xsk %.0f",
		r["pub_rtp"], r["xsk_rx"], r["xsk_rx_0"], r["xsk_rx_1"], r["xsk_tx"], r["xsk_tx_0"], r["xsk_tx_1"], r["fp_rx"], r["fp_tx"],
		r["xsk_fallback"], r["xsk_tx_dropped"], r["xsk_kick"], r["xdp_pass_stun"], r["xdp_pass_session"], r["xdp_redirect_xsk"])
	for i := range 3 {
		if p := r[fmt.Sprintf("delivered_%d", i)]; p != 100 {
			t.Errorf("player %d: %.2f %% of the access units byte-exact", i, p)
		}
	}
	// The publisher's RTP plus its RTCP and the players' RTCP come in
	// through the rings; the players' media and Fanout's RTCP go out.
	if r["xsk_rx"] < 0.95*r["pub_rtp"] || r["xdp_redirect_xsk"] < 0.95*r["pub_rtp"] {
		t.Errorf("XSK RX %.0f frames (redirected %.0f) for %.0f RTP packets published", r["xsk_rx"], r["xdp_redirect_xsk"], r["pub_rtp"])
	}
	if r["xsk_tx"] < 0.95*3*r["pub_rtp"] {
		t.Errorf("XSK TX %.0f frames for 3 players of %.0f RTP packets", r["xsk_tx"], r["pub_rtp"])
	}
	// Both cores own players, so both TX rings carry media. Which RX queue
	// a flow lands on is the sending veth's hash (all four may share one),
	// so the RX rings are judged by their sum above.
	if r["xsk_tx_0"] == 0 || r["xsk_tx_1"] == 0 {
		t.Errorf("a core's TX ring carried nothing: %v", r)
	}
	if r["xsk_fallback"] > 0.02*r["xsk_tx"] || r["xsk_tx_dropped"] > 0 {
		t.Errorf("%.0f socket fallbacks, %.0f TX drops", r["xsk_fallback"], r["xsk_tx_dropped"])
	}
	if r["xdp_pass_stun"] == 0 || r["xdp_pass_session"] == 0 {
		t.Errorf("STUN or DTLS did not pass to the kernel: %v", r)
	}
	checkNoXDP(t, pair, "SIGTERM")
	t.Run("sigkill", func(t *testing.T) {
		srv := pair.startFanoutChild(t, conf)
		if !xdpAttached(t, pair) || xskSockets(t, pair) == 0 {
			t.Fatal("AF_XDP mode is not up")
		}
		srv.kill()
		deadline := time.Now().Add(3 * time.Second)
		for xdpAttached(t, pair) || xskSockets(t, pair) > 0 {
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkNoXDP(t, pair, "SIGKILL")
	})
}

// checkNoXDP fails when B's veth end still has an XDP program or B an
// AF_XDP socket.
func checkNoXDP(t *testing.T, pair *netnsPair, after string) {
	t.Helper()
	if xdpAttached(t, pair) {
		t.Errorf("an XDP program is still on %s after %s", pair.DevB, after)
	}
	if n := xskSockets(t, pair); n > 0 {
		t.Errorf("%d AF_XDP sockets remain in %s after %s", n, pair.B, after)
	}
}

// xskSockets counts the AF_XDP sockets open in B: the "sockets" column
// of the XDP line of B's /proc/net/protocols (the kernel counts them per
// namespace; `ss --xdp` needs CONFIG_XDP_SOCKETS_DIAG, which not every
// kernel has).
func xskSockets(t *testing.T, pair *netnsPair) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", pair.B, "cat", "/proc/net/protocols").CombinedOutput()
	if err != nil {
		t.Fatalf("/proc/net/protocols in %s: %v: %s", pair.B, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "XDP" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("XDP line %q", line)
			}
			return n
		}
	}
	t.Fatal("no XDP line in /proc/net/protocols (a kernel without AF_XDP)")
	return 0
}

// TestXDPAFXDPPeers runs in A for TestXDPAFXDP: a publisher and three
// players of one stream, 4 s of H.264 + Opus, then the delivery per
// player and the server's counters.
func TestXDPAFXDPPeers(t *testing.T) {
	skipUnlessNetnsChild(t)
	api, ip := netnsEnv(t, "FANOUT_NETNS_API"), netip.MustParseAddr(netnsEnv(t, "FANOUT_NETNS_IP"))
	h264, ogg := gopMedia(t, 30, 4)
	pub := newQualityPublisher(t, qualityPeer(t, ip), api+"/rtc/v1/whip/?app=live&stream=afxdp")
	players := make([]*recPlayer, 3)
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			players[i] = newRecPlayer(t, qualityPeer(t, ip), api+"/rtc/v1/whep/?app=live&stream=afxdp")
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	time.Sleep(1500 * time.Millisecond) // the last repairs
	sent := pub.sentAUs()
	for i, p := range players {
		netnsResult(fmt.Sprintf("delivered_%d", i), delivered(sent, p.accessUnits()))
	}
	most := 0 // RTP packets the best-served player got: about what was published
	for _, p := range players {
		most = max(most, len(p.packets(true))+len(p.packets(false)))
	}
	netnsResult("pub_rtp", most)
	for k, v := range xskMetrics(t, api) {
		netnsResult(k, v)
	}
}

// xskMetrics reads the server's AF_XDP, fastpath and shield counters from
// /metrics: xsk_rx, xsk_tx and per core xsk_rx_N, xsk_tx_N; xsk_EVENT
// summed over cores; fp_rx, fp_tx; xdp_VERDICT.
func xskMetrics(t *testing.T, api string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, s := range scrapeLabelled(t, api) {
		switch s.name {
		case "fanout_xsk_frames_total":
			m["xsk_"+s.label("dir")] += s.value
			m["xsk_"+s.label("dir")+"_"+s.label("core")] += s.value
		case "fanout_xsk_events_total":
			m["xsk_"+s.label("event")] += s.value
		case "fanout_fastpath_rx_packets_total":
			m["fp_rx"] += s.value
		case "fanout_fastpath_tx_packets_total":
			m["fp_tx"] += s.value
		case "fanout_xdp_packets_total":
			m["xdp_"+s.label("verdict")] += s.value
		}
	}
	return m
}
