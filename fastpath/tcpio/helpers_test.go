package tcpio

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/fanout/fanout/fastpath/route"
)

// recSink records what the server delivers (frames copied: they are only
// valid during the call). onFrame, when set, runs inside TCPFrame.
type recSink struct {
	mu      sync.Mutex
	cond    *sync.Cond
	frames  map[netip.AddrPort][][]byte
	order   []netip.AddrPort // peers in order of their first frame
	closed  map[netip.AddrPort]int
	onFrame func(peer netip.AddrPort, frame []byte)
}

func newRecSink() *recSink {
	r := &recSink{frames: map[netip.AddrPort][][]byte{}, closed: map[netip.AddrPort]int{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recSink) TCPFrame(peer netip.AddrPort, frame []byte) {
	r.mu.Lock()
	if _, ok := r.frames[peer]; !ok {
		r.order = append(r.order, peer)
	}
	r.frames[peer] = append(r.frames[peer], append([]byte(nil), frame...))
	r.cond.Broadcast()
	f := r.onFrame
	r.mu.Unlock()
	if f != nil {
		f(peer, frame)
	}
}

func (r *recSink) TCPClosed(peer netip.AddrPort) {
	r.mu.Lock()
	r.closed[peer]++
	r.cond.Broadcast()
	r.mu.Unlock()
}

// wait blocks until cond (called with r.mu held) is true, or fails the test.
func (r *recSink) wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	stop := time.AfterFunc(10*time.Second, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		r.cond.Wait()
	}
}

// peerOf waits for the peer whose local client address is local.
func (r *recSink) peerOf(t testing.TB, local net.Addr) netip.AddrPort {
	t.Helper()
	ap, ok := addrPortOf(local)
	if !ok {
		t.Fatalf("not a TCP address: %v", local)
	}
	peer := route.TCPPeer(ap)
	r.wait(t, "first frame from "+local.String(), func() bool { return len(r.frames[peer]) > 0 })
	return peer
}

func (r *recSink) count(peer netip.AddrPort) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames[peer])
}

func (r *recSink) got(peer netip.AddrPort) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames[peer]...)
}

// bindingRequest is a real ICE connectivity check (pion/stun): USERNAME and FINGERPRINT.
func bindingRequest(t testing.TB, user string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// framed prefixes each payload with its RFC 4571 length.
func framed(payloads ...[]byte) []byte {
	var out []byte
	for _, p := range payloads {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// payload is n bytes of a pattern tagged by seed, first byte in the SRTP range.
func payload(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	if n > 0 {
		p[0] = 0x80
	}
	return p
}

// startServer starts a server on 127.0.0.1:0 (or with cfg.Listen as given) and
// closes it at cleanup; leak checking is registered first so it runs last.
func startServer(t testing.TB, cfg Config, sink Sink) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	return startRaw(t, cfg, sink)
}

func startRaw(t testing.TB, cfg Config, sink Sink) *Server {
	t.Helper()
	s, err := New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// dial connects to s and sends a Binding Request as the first frame.
func dial(t testing.TB, addr netip.AddrPort, sink *recSink) (*net.TCPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(framed(bindingRequest(t, "server:client"))); err != nil {
		t.Fatal(err)
	}
	return c, sink.peerOf(t, c.LocalAddr())
}

// readFrames reads n RFC 4571 frames from c.
func readFrames(t testing.TB, c net.Conn, n int) [][]byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out := make([][]byte, 0, n)
	var hdr [2]byte
	for range n {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatalf("read frame %d/%d: %v", len(out), n, err)
		}
		p := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, p); err != nil {
			t.Fatalf("read frame %d/%d body: %v", len(out), n, err)
		}
		out = append(out, p)
	}
	return out
}

// expectEOF waits for the server to close c.
func expectEOF(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if err != io.EOF && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("want EOF, got %v", err)
		}
		return
	}
}

// checkLeaks fails the test if goroutines started during it outlive its
// cleanups. gnet's global worker pool (ants) is exempt: its idle workers
// expire on their own after 10 s and belong to no Server.
func checkLeaks(t testing.TB) {
	t.Helper()
	before := goroutineIDs()
	t.Cleanup(func() {
		var extra []string
		for range 300 {
			extra = extra[:0]
			for id, stack := range goroutineStacks() {
				if _, ok := before[id]; !ok && !strings.Contains(stack, "panjf2000/ants") {
					extra = append(extra, stack)
				}
			}
			if len(extra) == 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%d goroutines leaked:\n%s", len(extra), strings.Join(extra, "\n\n"))
	})
}

func goroutineIDs() map[string]struct{} {
	ids := map[string]struct{}{}
	for id := range goroutineStacks() {
		ids[id] = struct{}{}
	}
	return ids
}

func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, " [")
		out[head] = g
	}
	return out
}

func mustAddrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// waitStats polls s.Stats until ok (loops publish counters after the Sink
// call, so a test that just saw a frame may read them a moment early).
func waitStats(t testing.TB, s *Server, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st := s.Stats(); !ok(st); st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
