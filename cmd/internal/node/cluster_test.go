package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/bridge/transcode"
	"github.com/fanout/fanout/conf"
	"github.com/fanout/fanout/control/cluster"
	"github.com/fanout/fanout/control/cluster/redistest"
)

// The cluster's system tests: Fanout nodes in this process on their own
// loopback ports and one real redis-server (installed by .ci/deps.sh
// test). The must-shows run separate processes (cluster_procs_test.go).

// clusterTTL is the registry TTL in these tests: a dead node's keys expire
// quickly, and go-redis's one-second reconnect probe still fits one TTL.
const clusterTTL = 3 * time.Second

// startClusterNode runs a Fanout node of the cluster on free loopback ports.
func startClusterNode(t testing.TB, rd *redistest.Server, id, extra string) *Server {
	t.Helper()
	return startClusterNodeConfig(t, rd, testConfig, id, extra)
}

// startClusterNodeConfig is startClusterNode on another base config.
func startClusterNodeConfig(t testing.TB, rd *redistest.Server, base, id, extra string) *Server {
	t.Helper()
	text := base + fmt.Sprintf("cluster { enabled on; redis %s; node_id %s; %s }\n", rd.URL(), id, extra)
	cfg, err := conf.Parse("test.conf", []byte(text), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0", ClusterTTL: clusterTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// postNoFollow POSTs an offer and returns the answer without following a redirect.
func postNoFollow(t testing.TB, url, body string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Post(url, "application/sdp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// offerSDP is a real recvonly/sendonly offer to POST by hand.
func offerSDP(t testing.TB) string {
	t.Helper()
	pc := newPeer(t)
	t.Cleanup(func() { pc.Close() })
	addRecvonly(t, pc)
	sdp, gathered := localOffer(t, pc)
	<-gathered
	return sdp()
}

// waitOwner waits until the registry names owner ("" = none) for the stream.
func waitOwner(t testing.TB, srv *Server, stream, owner string, d time.Duration) {
	t.Helper()
	m := srv.ClusterMember()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		n, ok, err := m.Lookup(context.Background(), cluster.Stream{Vhost: conf.DefaultVhost, App: "live", Name: stream})
		if err == nil && (ok && n.ID == owner || !ok && owner == "") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner of %s: %+v %v %v, want %q", stream, n, ok, err, owner)
		}
	}
}

// streamMedia runs a publisher over the test media in the background.
func streamMedia(t testing.TB, pub *testPublisher) (stop func()) {
	t.Helper()
	h264, ogg := mediaFiles(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	return func() { cancel(); <-done }
}

func waitAUs(t testing.TB, p *testPlayer, n int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if got, _ := p.received(); len(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := p.received()
			t.Fatalf("player received %d access units in %v, want %d", len(got), d, n)
		}
	}
}

// TestClusterWHIPOwnedElsewhere: a stream published on A is refused on B
// with 409, or sent to A with 307 when B has `redirect on`; a publisher that
// follows the redirect works on A.
func TestClusterWHIPOwnedElsewhere(t *testing.T) {
	rd := redistest.New(t)
	a := startClusterNode(t, rd, "a", "")
	b := startClusterNode(t, rd, "b", "")
	br := startClusterNode(t, rd, "br", "redirect on;")
	q := "app=live&stream=owned"
	pub := newTestPublisher(t, a, q)
	waitOwner(t, b, "owned", "a", 3*time.Second)

	offer := offerSDP(t)
	if resp := postNoFollow(t, b.url("/rtc/v1/whip/?"+q), offer); resp.StatusCode != http.StatusConflict {
		t.Fatalf("WHIP to B, redirect off: %d, want 409", resp.StatusCode)
	}
	resp := postNoFollow(t, br.url("/rtc/v1/whip/?"+q), offer)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || loc != a.url("/rtc/v1/whip/?"+q) {
		t.Fatalf("WHIP to B, redirect on: %d Location %q, want 307 to %s", resp.StatusCode, loc, a.url("/rtc/v1/whip/?"+q))
	}
	// The owner's publisher leaves; the one that was redirected publishes
	// at the Location and players on A get its media.
	if code, _, body := httpDo(t, http.MethodDelete, a.url(pub.res.Location), nil, ""); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	pub.pc.Close()
	pub2 := newTestPublisherOn(t, loc, webrtc.NetworkTypeUDP4)
	stop := streamMedia(t, pub2)
	defer stop()
	waitOwner(t, b, "owned", "a", 3*time.Second)
	player := newTestPlayer(t, a, q)
	waitAUs(t, player, 30, 5*time.Second)

	var api struct {
		Data struct {
			Node   string             `json:"node"`
			Nodes  []cluster.NodeInfo `json:"nodes"`
			Owners []cluster.Owner    `json:"owners"`
		} `json:"data"`
	}
	_, _, body := httpDo(t, http.MethodGet, b.url("/api/v1/cluster"), nil, "")
	if err := json.Unmarshal([]byte(body), &api); err != nil || api.Data.Node != "b" || len(api.Data.Nodes) != 3 ||
		len(api.Data.Owners) != 1 || api.Data.Owners[0].Node != "a" {
		t.Errorf("/api/v1/cluster on B: %v %s", err, body)
	}
	_, _, metrics := httpDo(t, http.MethodGet, br.url("/metrics"), nil, "")
	for _, want := range []string{`fanout_cluster_redirects_total{kind="publish"} 1`, "fanout_cluster_nodes 3", "fanout_cluster_registry_up 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics on B lacks %q", want)
		}
	}
}

// TestClusterRTMPPublisherClaims: an RTMP publisher (rtmp_to_rtc) owns its
// stream cluster-wide like a WebRTC one, and releases it when it stops.
func TestClusterRTMPPublisherClaims(t *testing.T) {
	if !transcode.Available() {
		t.Skip("rtmp_to_rtc needs the cgo transcoder (built with notranscode or without cgo)")
	}
	rd := redistest.New(t)
	a := startClusterNodeConfig(t, rd, bridgeConfig("rtmp_to_rtc on;"), "a", "")
	b := startClusterNode(t, rd, "b", "")
	pushed := startFFmpeg(t, 20*time.Second, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "3",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "50",
		"-c:a", "aac", "-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/live/rtmp", a.RTMPAddr().Port()))
	waitOwner(t, b, "rtmp", "a", 10*time.Second)
	if resp := postNoFollow(t, b.url("/rtc/v1/whip/?app=live&stream=rtmp"), offerSDP(t)); resp.StatusCode != http.StatusConflict {
		t.Fatalf("WHIP to B while A has the RTMP publisher: %d, want 409", resp.StatusCode)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	waitOwner(t, b, "rtmp", "", 5*time.Second)
}
