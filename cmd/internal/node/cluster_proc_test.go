package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/control/cluster"
	"github.com/fanout/fanout/control/cluster/redistest"
)

// The cluster's must-shows run separate Fanout processes: the built
// cmd/fanout binary, each with its own config file on loopback ports, and
// one real redis-server (cluster_procs_test.go has the tests).

// procVhost is a plain WebRTC vhost; procBridgeVhost adds rtc_to_rtmp,
// HTTP-FLV and HLS.
const (
	procVhost       = "vhost __defaultVhost__ { rtc { enabled on; stun_timeout 30; } }"
	procBridgeVhost = `vhost __defaultVhost__ {
    rtc { enabled on; stun_timeout 30; rtc_to_rtmp on; }
    http_remux { enabled on; }
    hls { enabled on; hls_fragment 1; hls_window 10; }
}`
)

// fanoutProc is one Fanout process of a cluster test.
type fanoutProc struct {
	t               *testing.T
	id              string
	cmd             *exec.Cmd
	api, http, rtmp int
	log             *lockedBuffer
	exited          chan struct{}
}

// startProc runs cmd/fanout as node id on rd with vhost and the extra
// cluster directives, and waits until its cluster API answers.
func startProc(t *testing.T, rd *redistest.Server, id, vhost, extra string) *fanoutProc {
	t.Helper()
	bin := buildFanout(t)
	p := &fanoutProc{t: t, id: id, api: freePort(t, "tcp"), http: freePort(t, "tcp"), rtmp: freePort(t, "tcp"),
		log: &lockedBuffer{}, exited: make(chan struct{})}
	text := fmt.Sprintf(`listen 127.0.0.1:%d;
daemon off;
http_api { enabled on; listen 127.0.0.1:%d; }
http_server { enabled on; listen 127.0.0.1:%d; dir ./objs/nginx/html; }
rtc_server { enabled on; listen %d; candidate 127.0.0.1; }
%s
cluster { enabled on; redis %s; node_id %s; ttl %d; %s }
`, p.rtmp, p.api, p.http, freePort(t, "udp"), vhost, rd.URL(), id, int(clusterTTL.Seconds()), extra)
	file := filepath.Join(t.TempDir(), id+".conf")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-c", file)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("node %s log:\n%s", id, tail(p.log.String(), 40))
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(p.url("/api/v1/cluster")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("node %s exited:\n%s", id, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: no cluster API after 10 s:\n%s", id, p.log.String())
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill ends the process with SIGKILL (no release, no leave) and waits.
func (p *fanoutProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// base is the node's advertised base URL.
func (p *fanoutProc) base() string { return fmt.Sprintf("http://127.0.0.1:%d", p.api) }

func (p *fanoutProc) url(path string) string { return p.base() + path }

func (p *fanoutProc) whep(stream string) string {
	return p.url("/rtc/v1/whep/?app=live&stream=" + stream)
}

func (p *fanoutProc) whip(stream string) string {
	return p.url("/rtc/v1/whip/?app=live&stream=" + stream)
}

// players starts n pion WHEP players of stream on p.
func (p *fanoutProc) players(stream string, n int) []*testPlayer {
	p.t.Helper()
	ps := make([]*testPlayer, n)
	for i := range ps {
		ps[i] = newTestPlayerOn(p.t, p.whep(stream), webrtc.NetworkTypeUDP4)
		p.t.Cleanup(func() { _ = ps[i].pc.Close() })
	}
	return ps
}

// getJSON GETs path on p into v.
func (p *fanoutProc) getJSON(path string, v any) {
	p.t.Helper()
	code, _, body := httpDo(p.t, http.MethodGet, p.url(path), nil, "")
	if err := json.Unmarshal([]byte(body), v); code != http.StatusOK || err != nil {
		p.t.Fatalf("GET %s on %s: %d %v %s", path, p.id, code, err, body)
	}
}

// clients is /api/v1/streams' client count of stream on p (its
// publisher and players), 0 when p does not have it.
func (p *fanoutProc) clients(stream string) int {
	p.t.Helper()
	var v struct {
		Streams []struct {
			Name    string `json:"name"`
			Clients int    `json:"clients"`
		} `json:"streams"`
	}
	p.getJSON("/api/v1/streams/?count=100", &v)
	for _, s := range v.Streams {
		if s.Name == stream {
			return s.Clients
		}
	}
	return 0
}

// procCluster is /api/v1/cluster's data.
type procCluster struct {
	Data struct {
		Node    string             `json:"node"`
		Healthy bool               `json:"healthy"`
		Nodes   []cluster.NodeInfo `json:"nodes"`
		Owners  []cluster.Owner    `json:"owners"`
		Relays  []struct {
			Stream, Upstream string
			Connected        bool
		} `json:"relays"`
	} `json:"data"`
}

func (p *fanoutProc) cluster() procCluster {
	p.t.Helper()
	var v procCluster
	p.getJSON("/api/v1/cluster", &v)
	return v
}

// owner is the owner node id of stream that p's registry names, "" for none.
func (p *fanoutProc) owner(stream string) string {
	p.t.Helper()
	for _, o := range p.cluster().Data.Owners {
		if o.Stream == "__defaultVhost__/live/"+stream {
			return o.Node
		}
	}
	return ""
}

// waitProcOwner waits until p's registry names owner ("" = none) for stream.
func waitProcOwner(t *testing.T, p *fanoutProc, stream, owner string, d time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for deadline := began.Add(d); ; time.Sleep(50 * time.Millisecond) {
		if got := p.owner(stream); got == owner {
			return time.Since(began)
		} else if time.Now().After(deadline) {
			t.Fatalf("owner of %s on %s: %q after %v, want %q", stream, p.id, got, d, owner)
		}
	}
}

// metric is the value of a /metrics line that starts with series + " ".
func (p *fanoutProc) metric(series string) string {
	p.t.Helper()
	_, _, body := httpDo(p.t, http.MethodGet, p.url("/metrics"), nil, "")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// checkOneRelay: the edge has one relay open, opened once.
func checkOneRelay(t *testing.T, e *fanoutProc) {
	t.Helper()
	if open, opened := e.metric("fanout_cluster_relays"), e.metric(`fanout_cluster_relay_events_total{event="opened"}`); open != "1" || opened != "1" {
		t.Errorf("edge %s: fanout_cluster_relays %q, opened %q, want 1 and 1", e.id, open, opened)
	}
}

// publishProc publishes the test media (6 s) loops times on p in the
// background; done is closed at its end.
func publishProc(t *testing.T, p *fanoutProc, stream string, loops int) (pub *testPublisher, done <-chan struct{}) {
	t.Helper()
	h264, ogg := mediaFiles(t)
	pub = newTestPublisherOn(t, p.whip(stream), webrtc.NetworkTypeUDP4)
	t.Cleanup(func() { _ = pub.pc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(loops)*10*time.Second)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer cancel()
		for range loops {
			pub.stream(ctx, t, h264, ogg)
		}
	}()
	t.Cleanup(func() { cancel(); <-ch })
	return pub, ch
}
