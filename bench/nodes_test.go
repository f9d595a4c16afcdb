package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanout/fanout/bench/pionrelay"
)

// TestReaderForRoundRobin checks the assignment: subscriber i plays from
// node i mod len(WHEPs), on one of that node's readers, spread over them.
func TestReaderForRoundRobin(t *testing.T) {
	cfg := Config{WHEPs: []string{"http://a/whep", "http://b/whep", "http://c/whep"}, Readers: 4, ServerPIDs: []int{1, 2, 3, 4}}
	cfg.nodeDefaults()
	if cfg.Readers != 6 || cfg.WHEP != "http://a/whep" || cfg.ServerPID != 1 || cfg.nodeCount() != 4 {
		t.Fatalf("readers %d, whep %q, pid %d, nodes %d", cfg.Readers, cfg.WHEP, cfg.ServerPID, cfg.nodeCount())
	}
	r := &runner{cfg: cfg}
	for i := range cfg.Readers {
		r.readers = append(r.readers, &reader{node: i % 3})
	}
	used := map[*reader]int{}
	for id := range 12 {
		s := &subscriber{id: id, node: cfg.nodeOf(id)}
		if s.node != id%3 {
			t.Fatalf("subscriber %d on node %d", id, s.node)
		}
		rd := r.readerFor(s)
		if rd.node != s.node {
			t.Fatalf("subscriber %d of node %d read by node %d's reader", id, s.node, rd.node)
		}
		used[rd]++
	}
	for i, rd := range r.readers {
		if used[rd] != 2 {
			t.Fatalf("reader %d serves %d subscribers, want 2", i, used[rd])
		}
	}
}

// countingFront puts two WHEP URLs (/a/whep, /b/whep) in front of one pion
// relay and counts the POSTs each receives; everything else (WHIP, DELETE
// of the relative resource URLs) goes through unchanged.
func countingFront(t *testing.T, relay string) (base string, posts *[2]atomic.Int32) {
	target, err := url.Parse(relay)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	proxy := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		if p := pr.In.URL.Path; strings.HasSuffix(p, "/whep") {
			pr.Out.URL.Path = "/whep"
		}
	}}
	posts = new([2]atomic.Int32)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a/whep":
			posts[0].Add(1)
		case "/b/whep":
			posts[1].Add(1)
		}
		proxy.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		tr.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String(), posts
}

// TestRunNodesRoundRobin plays from two WHEP URLs (a counting front of one
// pion relay) with a third process id for a node without players: the
// subscribers alternate between the URLs, and the report splits packets,
// loss and CPU by node, the nodes summing to the totals. With -sink (when
// the bench may load BPF programs) each node's socket filter counts apart.
func TestRunNodesRoundRobin(t *testing.T) {
	for _, sinkMode := range []bool{false, true} {
		name := map[bool]string{false: "epoll", true: "sink"}[sinkMode]
		t.Run(name, func(t *testing.T) {
			if sinkMode {
				testSink(t).close() // privilege probe
			}
			checkGoroutines(t)
			relay, err := pionrelay.Start("127.0.0.1:0", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			base, posts := countingFront(t, relay.URL())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pid := os.Getpid()
			rep, err := Run(ctx, Config{WHIP: relay.URL() + "/whip", WHEPs: []string{base + "/a/whep", base + "/b/whep"},
				Subs: 6, Readers: 1, Dur: 2 * time.Second, Warmup: 4 * time.Second, ServerPIDs: []int{pid, pid, pid},
				Sink: sinkMode, RxPoll: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			checkNodes(t, rep, [2]int32{posts[0].Load(), posts[1].Load()})
		})
	}
}

func checkNodes(t *testing.T, rep *Report, posts [2]int32) {
	t.Helper()
	r := rep.Result
	if posts != [2]int32{3, 3} || r.SubscribersConnected != 6 || len(r.Nodes) != 3 {
		t.Fatalf("POSTs per URL %v, connected %d, %d nodes, errors %v", posts, r.SubscribersConnected, len(r.Nodes), rep.Errors)
	}
	var sum uint64
	for _, n := range r.Nodes[:2] {
		t.Logf("node %+v", n)
		if n.SubscribersConnected != 3 || n.PacketsReceived == 0 || n.LossRatio > 0.05 || n.ServerCPUUsPerPacket <= 0 {
			t.Fatalf("node %+v", n)
		}
		sum += n.PacketsReceived
	}
	if sum != r.PacketsReceived {
		t.Fatalf("nodes received %d packets, the run %d", sum, r.PacketsReceived)
	}
	// The same process three times: the total is three times one node's.
	if extra := r.Nodes[2]; extra.Server != "" || extra.PacketsReceived != 0 || extra.ServerCPUPercent <= 0 ||
		extra.ServerCPUUsPerPacket != -1 || r.ServerCPUPercent < 2.5*extra.ServerCPUPercent {
		t.Fatalf("node without players %+v, total cpu %.1f %%", extra, r.ServerCPUPercent)
	}
	var b strings.Builder
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "node 2 (no players)") || !strings.Contains(markdownNodes(rep.Steps), "| 6 | 1 |") &&
		!strings.Contains(markdownNodes([]Result{r}), "| 6 | 1 |") {
		t.Fatalf("per-node lines missing:\n%s", b.String())
	}
}
