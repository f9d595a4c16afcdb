package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// usage is what churn must give back: goroutines, live heap, open files
// and live sessions.
type usage struct {
	goroutines, fds, sessions int
	heap                      uint64
}

func (u usage) String() string {
	return fmt.Sprintf("goroutines %d, heap %.1f MiB, fds %d, sessions %d", u.goroutines, float64(u.heap)/(1<<20), u.fds, u.sessions)
}

func measure(srv *Server) usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	_, live := srv.ctl.Stats()
	return usage{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, fds: len(fds), sessions: live}
}

// settled waits (up to d) until the usage is back within the bounds of
// base, and returns the last measure.
func settled(srv *Server, base usage, d time.Duration) (usage, bool) {
	deadline := time.Now().Add(d)
	for {
		u := measure(srv)
		ok := u.sessions == base.sessions && u.goroutines <= base.goroutines+churnSlackGoroutines &&
			u.fds <= base.fds+churnSlackFDs && u.heap <= base.heap+churnSlackHeap
		if ok || time.Now().After(deadline) {
			return u, ok
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The bounds churn must return within: a few goroutines and files that
// come and go with the live peers' own timers, and heap noise.
const (
	churnSlackGoroutines = 8
	churnSlackFDs        = 4
	churnSlackHeap       = 8 << 20
)

// churnPlan is a churn run: n join/leave cycles by workers in parallel;
// every expireEvery-th session is left without DELETE (to end by
// stun_timeout), every tcpEvery-th binds over WebRTC over TCP first (0:
// none); each worker waits pace between its cycles.
type churnPlan struct {
	n, workers, expireEvery, tcpEvery int
	pace                              time.Duration
}

// churn runs the plan against whepURL until done or ctx ends, and returns
// how many cycles failed and the first error.
func churn(ctx context.Context, srv *Server, whepURL, sdp string, pl churnPlan) (fails int64, first error) {
	tr := &http.Transport{MaxIdleConnsPerHost: pl.workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range pl.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(pl.n) {
					return
				}
				var err error
				if pl.tcpEvery > 0 && i%int64(pl.tcpEvery) == 0 {
					err = tcpCycle(c, srv, whepURL, sdp)
				} else {
					err = cycle(c, whepURL, sdp, i%int64(pl.expireEvery) != 0)
				}
				if err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
				time.Sleep(pl.pace)
			}
		})
	}
	wg.Wait()
	return failed.Load(), first
}

// cycle is one player joining (WHEP POST) and, when leave, leaving (DELETE
// of its Location).
func cycle(c *http.Client, whepURL, sdp string, leave bool) error {
	resp, err := c.Post(whepURL, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("WHEP POST: %d", resp.StatusCode)
	}
	if !leave {
		return nil
	}
	base, _, _ := strings.Cut(whepURL, "/rtc/")
	req, _ := http.NewRequest(http.MethodDelete, base+resp.Header.Get("Location"), nil)
	if resp, err = c.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE: %d", resp.StatusCode)
	}
	return nil
}

// TestChurn10k: 10,000 WHEP join/leave cycles (one in ten left to expire
// by a 3 s stun_timeout instead of DELETE, one in fifty bound over WebRTC
// over TCP before it leaves) against one live pion
// publisher: afterwards goroutines, heap, open files and sessions are back
// at the baseline (within small bounds), and a pion player that watched
// throughout received every access unit byte-exact.
func TestChurn10k(t *testing.T) {
	h264, ogg := mediaFiles(t)
	// The sessions left to expire live 3 s: thousands at a fast machine's
	// churn rate, over SRS's default max_connections of 1000.
	srv := startWithTCP(t, "max_connections 100000;\n"+strings.Replace(testConfig, "stun_timeout 30;", "stun_timeout 3;", 1))
	q := "app=live&stream=churn"
	player := newTestPlayer(t, srv, q)
	pub := newTestPublisher(t, srv, q)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streaming := make(chan struct{})
	go func() {
		defer close(streaming)
		for ctx.Err() == nil {
			pub.stream(ctx, t, h264, ogg) // the 6 s files, looped
		}
	}()
	time.Sleep(time.Second)
	base := measure(srv)
	start := time.Now()
	fails, err := churn(ctx, srv, srv.url("/rtc/v1/whep/?"+q), limitOfferSDP(t, true),
		churnPlan{n: 10_000, workers: 8, expireEvery: 10, tcpEvery: 50})
	took := time.Since(start)
	if fails > 0 {
		t.Fatalf("%d of 10000 cycles failed, the first: %v", fails, err)
	}
	end, ok := settled(srv, base, 10*time.Second)
	counts, _ := srv.ctl.Stats()
	t.Logf("10000 cycles in %v (%.0f/s); %d sessions created, %d ended", took.Round(time.Millisecond),
		10_000/took.Seconds(), counts.SessionsCreated, counts.SessionsEnded)
	t.Logf("start: %v", base)
	t.Logf("end:   %v", end)
	if !ok {
		t.Errorf("usage did not return to the baseline: start %v, end %v", base, end)
	}
	cancel()
	<-streaming
	time.Sleep(300 * time.Millisecond)
	checkByteExact(t, pub, player)
}

// tcpCycle is a player that joins, binds its session over WebRTC over TCP
// (an RFC 4571 framed, authenticated STUN Binding Request, answered), and
// leaves by DELETE: the server must then close the TCP connection.
func tcpCycle(c *http.Client, srv *Server, whepURL, sdp string) error {
	resp, err := c.Post(whepURL, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("WHEP POST: %d", resp.StatusCode)
	}
	conn, err := net.Dial("tcp", srv.tcpSrv.Addr().String())
	if err != nil {
		return err
	}
	defer conn.Close()
	user := sdpValue(string(answer), "ice-ufrag") + ":" + sdpValue(sdp, "ice-ufrag")
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		stun.NewShortTermIntegrity(sdpValue(string(answer), "ice-pwd")), stun.Fingerprint)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(m.Raw)))); err != nil {
		return err
	}
	if _, err := conn.Write(m.Raw); err != nil {
		return err
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return fmt.Errorf("no STUN answer over TCP: %w", err)
	}
	if _, err := io.ReadFull(conn, make([]byte, binary.BigEndian.Uint16(hdr))); err != nil {
		return err
	}
	base, _, _ := strings.Cut(whepURL, "/rtc/")
	req, _ := http.NewRequest(http.MethodDelete, base+resp.Header.Get("Location"), nil)
	if resp, err = c.Do(req); err != nil {
		return err
	}
	resp.Body.Close()
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return fmt.Errorf("the TCP connection of an ended session stayed open: %w", err)
	}
	return nil
}

// sdpAttr is the first a=name: value of an SDP.
func sdpValue(sdp, name string) string {
	_, v, _ := strings.Cut(sdp, "a="+name+":")
	v, _, _ = strings.Cut(v, "\r\n")
	return strings.TrimSpace(v)
}
