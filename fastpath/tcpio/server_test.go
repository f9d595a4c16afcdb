package tcpio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

func TestConfigListen(t *testing.T) {
	for _, l := range []string{"8000", "0.0.0.0:8000", "[::]:8000", "127.0.0.1:0", ":8000"} {
		if _, err := New(Config{Listen: l}, newRecSink()); err != nil {
			t.Errorf("Listen %q: %v", l, err)
		}
	}
	if _, err := New(Config{Listen: "a:b:c"}, newRecSink()); err == nil {
		t.Error("Listen a:b:c accepted")
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("nil sink accepted")
	}
}

// TestListenDualStack: the wildcards accept IPv4 and IPv6 clients (gnet
// makes "[::]" IPv6-only unless it is written as an empty host).
func TestListenDualStack(t *testing.T) {
	for _, l := range []string{"0", "[::]:0", ":0"} {
		t.Run(l, func(t *testing.T) {
			s := startServer(t, Config{Listen: l, Loops: 1}, newRecSink())
			for _, host := range []string{"127.0.0.1", "::1"} {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(s.Addr().Port())), 3*time.Second)
				if err != nil {
					t.Fatalf("listen %q: connect from %s: %v", l, host, err)
				}
				c.Close()
			}
		})
	}
}

// TestFramingSplitEveryOffset sends the same stream of frames once per split
// point, as two TCP segments cut at that byte, and checks every frame arrives
// whole, byte-exact and in order (and nothing arrives early).
func TestFramingSplitEveryOffset(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 2}, sink)
	c, peer := dial(t, s.Addr(), sink)

	payloads := [][]byte{payload(1, 1), payload(2, 2), payload(100, 3), payload(1500, 4), payload(37, 5)}
	stream := framed(payloads...)
	ends := make([]int, 0, len(payloads)) // stream offsets where each frame ends
	off := 0
	for _, p := range payloads {
		off += 2 + len(p)
		ends = append(ends, off)
	}
	base := 1 // the Binding Request
	for cut := 1; cut < len(stream); cut++ {
		complete := 0
		for _, e := range ends {
			if e <= cut {
				complete++
			}
		}
		mustWrite(t, c, stream[:cut])
		want := base + complete
		sink.wait(t, fmt.Sprintf("cut %d: %d frames", cut, want), func() bool { return len(sink.frames[peer]) >= want })
		if complete == 0 {
			time.Sleep(200 * time.Microsecond) // let a lone partial frame reach the server first
		}
		if n := sink.count(peer); n != want {
			t.Fatalf("cut %d: %d frames delivered before the rest was sent, want %d", cut, n, want)
		}
		mustWrite(t, c, stream[cut:])
		base += len(payloads)
		sink.wait(t, fmt.Sprintf("cut %d: all frames", cut), func() bool { return len(sink.frames[peer]) >= base })
	}
	got := sink.got(peer)[1:]
	for i, f := range got {
		if want := payloads[i%len(payloads)]; !bytes.Equal(f, want) {
			t.Fatalf("frame %d: %d bytes, want %d (content differs)", i, len(f), len(want))
		}
	}
	waitStats(t, s, func(st Stats) bool { return st.FramesIn == uint64(1+len(got)) && st.ConnsOpen == 1 })
}

func mustWrite(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestManyFramesPerSegment sends 200 frames in one write.
func TestManyFramesPerSegment(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 1}, sink)
	c, peer := dial(t, s.Addr(), sink)
	var ps [][]byte
	for i := range 200 {
		ps = append(ps, payload(1+i*7%1500, byte(i)))
	}
	mustWrite(t, c, framed(ps...))
	sink.wait(t, "200 frames", func() bool { return len(sink.frames[peer]) == 201 })
	for i, f := range sink.got(peer)[1:] {
		if !bytes.Equal(f, ps[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// TestBadFirstBytes: connections that break the rules are closed and counted.
func TestBadFirstBytes(t *testing.T) {
	checkLeaks(t)
	stunLenOff := bindingRequest(t, "a:b")
	binary.BigEndian.PutUint16(stunLenOff[2:], uint16(len(stunLenOff))) // header length != frame
	resp := bindingRequest(t, "a:b")
	resp[0], resp[1] = 0x01, 0x01 // Binding Success Response
	over := append([]byte{0x05, 0xDD}, make([]byte, 1501)...)
	tests := []struct {
		name       string
		afterSTUN  bool // send a valid Binding Request first
		data       []byte
		reason     uint8
		wantFrames int
	}{
		{"dtls first", false, framed(append([]byte{22, 0xfe, 0xfd}, make([]byte, 40)...)), CloseNotBinding, 0},
		{"binding response first", false, framed(resp), CloseNotBinding, 0},
		{"stun length mismatch", false, framed(stunLenOff), CloseNotBinding, 0},
		{"short stun", false, framed([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}), CloseNotBinding, 0},
		{"length 0", false, []byte{0, 0, 1, 2, 3}, CloseBadLength, 0},
		{"length 1501 first", false, over, CloseBadLength, 0},
		{"length 1501 after stun", true, over, CloseBadLength, 1},
		{"length 0 after stun", true, []byte{0, 0}, CloseBadLength, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRecSink()
			s := startServer(t, Config{Loops: 1}, sink)
			c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(s.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			data := tt.data
			if tt.afterSTUN {
				data = append(framed(bindingRequest(t, "a:b")), data...)
			}
			mustWrite(t, c, data)
			expectEOF(t, c)
			peer := route.TCPPeer(c.LocalAddr().(*net.TCPAddr).AddrPort())
			sink.wait(t, "TCPClosed", func() bool { return sink.closed[peer] == 1 })
			st := s.Stats()
			if st.Closes[tt.reason] != 1 || st.ConnsOpen != 0 || sink.count(peer) != tt.wantFrames {
				t.Fatalf("closes %v open %d frames %d, want reason %s and %d frames",
					st.Closes, st.ConnsOpen, sink.count(peer), CloseReasonName(tt.reason), tt.wantFrames)
			}
			if s.Write(peer, []byte{1}) {
				t.Fatal("Write to a closed connection succeeded")
			}
		})
	}
}

// TestMaxFrameBoundary: exactly MaxFrame passes, and a custom MaxFrame is honoured.
func TestMaxFrameBoundary(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 1, MaxFrame: 200}, sink)
	c, peer := dial(t, s.Addr(), sink)
	mustWrite(t, c, framed(payload(200, 9)))
	sink.wait(t, "200-byte frame", func() bool { return len(sink.frames[peer]) == 2 })
	mustWrite(t, c, framed(payload(201, 9)))
	expectEOF(t, c)
	sink.wait(t, "close", func() bool { return sink.closed[peer] == 1 })
	if got := s.Stats().Closes[CloseBadLength]; got != 1 {
		t.Fatalf("bad length closes = %d", got)
	}
}

// TestWriteFlushRoundTrip: frames come back byte-exact and in order, 300 of
// them coalesced into one write by one Flush.
func TestWriteFlushRoundTrip(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 2}, sink)
	c, peer := dial(t, s.Addr(), sink)

	// One writer, one Flush: 300 frames, one write syscall.
	var want [][]byte
	for i := range 300 {
		p := payload(1+i*13%1200, byte(i))
		want = append(want, p)
		if !s.Write(peer, p) {
			t.Fatalf("Write %d refused", i)
		}
	}
	s.Flush()
	got := readFrames(t, c, len(want))
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	st := s.Stats()
	if st.Writes != 1 || st.FramesOut != 300 {
		t.Fatalf("one Flush of 300 frames: writes=%d framesOut=%d, want 1 and 300", st.Writes, st.FramesOut)
	}

}

// TestWriteConcurrentWriters: four goroutines (fastpath cores) write to one
// connection with their own Flushes; each writer's order is kept.
func TestWriteConcurrentWriters(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 2}, sink)
	c, peer := dial(t, s.Addr(), sink)
	const writers, per = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				var p [8]byte
				binary.BigEndian.PutUint32(p[:], uint32(w))
				binary.BigEndian.PutUint32(p[4:], uint32(i))
				for !s.Write(peer, p[:]) {
					time.Sleep(time.Millisecond) // over the bound: let the loop drain
					s.Flush()
				}
				if i%50 == 49 {
					s.Flush()
				}
			}
			s.Flush()
		}()
	}
	next := make([]uint32, writers)
	for _, f := range readFrames(t, c, writers*per) {
		w, i := binary.BigEndian.Uint32(f), binary.BigEndian.Uint32(f[4:])
		if i != next[w] {
			t.Fatalf("writer %d: frame %d arrived, want %d", w, i, next[w])
		}
		next[w]++
	}
	wg.Wait()
	st := s.Stats()
	if st.FramesOut != writers*per || st.Writes > writers*per/10 {
		t.Fatalf("stats after concurrent writers: %+v", st)
	}
	t.Logf("%d frames in %d writes", st.FramesOut, st.Writes)
}

// TestWriteOverflow: a peer that does not read loses packets (counted) instead
// of growing memory, and recovers once it reads again.
func TestWriteOverflow(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 1, MaxPending: 64 << 10}, sink)
	c, peer := dial(t, s.Addr(), sink)
	p := payload(1000, 1)
	accepted := 0
	for range 20000 { // ~20 MB offered to a reader that reads nothing
		if s.Write(peer, p) {
			accepted++
		}
		s.Flush()
	}
	st := s.Stats()
	if st.WriteOverflow == 0 || accepted == 20000 {
		t.Fatalf("no overflow: accepted %d, stats %+v", accepted, st)
	}
	// Drain what was accepted, then the connection takes output again.
	got := readFrames(t, c, accepted)
	if len(got) != accepted {
		t.Fatalf("read %d of %d", len(got), accepted)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !s.Write(peer, p) {
		s.Flush()
		if time.Now().After(deadline) {
			t.Fatal("connection never accepted output again after draining")
		}
		time.Sleep(time.Millisecond)
	}
	s.Flush()
	readFrames(t, c, 1)
	t.Logf("accepted %d of 20000, overflow drops %d", accepted, s.Stats().WriteOverflow)
}

// TestEcho200Conns: 200 concurrent connections, the Sink echoing each frame
// back through Write+Flush from the loop itself; one bad connection among
// them is closed without disturbing the others.
func TestEcho200Conns(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	var sp atomic.Pointer[Server] // the race detector cannot see TCP as a happens-before edge
	sink.onFrame = func(peer netip.AddrPort, frame []byte) {
		if frame[0] == 0x80 {
			sp.Load().Write(peer, frame)
			sp.Load().Flush()
		}
	}
	s := startServer(t, Config{Loops: 2}, sink)
	sp.Store(s)
	const conns, frames = 200, 20
	var wg sync.WaitGroup
	errs := make(chan error, conns+1)
	wg.Add(1)
	go func() { // the bad one: a length above MaxFrame midway
		defer wg.Done()
		c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(s.Addr()))
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		_, _ = c.Write(append(framed(bindingRequest(t, "bad:x"), payload(10, 1)), 0xFF, 0xFF))
		_, _ = c.Read(make([]byte, 64))
	}()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoClient(s.Addr(), i, frames, bindingRequest(t, "s:c"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.ConnsTotal != conns+1 || st.Closes[CloseBadLength] != 1 || st.FramesOut != conns*frames {
		t.Fatalf("stats %+v", st)
	}
}

func echoClient(addr netip.AddrPort, id, frames int, stunReq []byte) error {
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	defer c.Close()
	var ps [][]byte
	for j := range frames {
		ps = append(ps, payload(20+(id*31+j*17)%1400, byte(id+j)))
	}
	if _, err := c.Write(append(framed(stunReq), framed(ps...)...)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2+1500)
	for j, want := range ps {
		if _, err := readFull(c, buf[:2]); err != nil {
			return fmt.Errorf("conn %d frame %d: %w", id, j, err)
		}
		n := int(binary.BigEndian.Uint16(buf))
		if _, err := readFull(c, buf[2:2+n]); err != nil {
			return fmt.Errorf("conn %d frame %d: %w", id, j, err)
		}
		if !bytes.Equal(buf[2:2+n], want) {
			return fmt.Errorf("conn %d frame %d: echo differs", id, j)
		}
	}
	return nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestCloseConn: control closes a connection by pseudo-address, from outside
// and from inside TCPFrame; the reason is counted and no later frame is delivered.
func TestCloseConn(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	var sp atomic.Pointer[Server]
	sink.onFrame = func(peer netip.AddrPort, frame []byte) {
		if isBindingRequest(frame) && bytes.Contains(frame, []byte("nobody")) {
			sp.Load().CloseConn(peer, CloseUnknownSession) // as control does for an unknown ufrag
		}
	}
	s := startServer(t, Config{Loops: 1}, sink)
	sp.Store(s)

	c1, p1 := dial(t, s.Addr(), sink)
	s.CloseConn(p1, CloseDuplicate)
	expectEOF(t, c1)
	sink.wait(t, "TCPClosed 1", func() bool { return sink.closed[p1] == 1 })

	c2, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	mustWrite(t, c2, framed(bindingRequest(t, "nobody:x"), payload(50, 1), payload(50, 2)))
	expectEOF(t, c2)
	p2 := route.TCPPeer(c2.LocalAddr().(*net.TCPAddr).AddrPort())
	sink.wait(t, "TCPClosed 2", func() bool { return sink.closed[p2] == 1 })
	if n := sink.count(p2); n != 1 {
		t.Fatalf("%d frames delivered after CloseConn in TCPFrame, want only the request", n)
	}
	st := s.Stats()
	if st.Closes[CloseDuplicate] != 1 || st.Closes[CloseUnknownSession] != 1 || st.ConnsOpen != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s.Write(p1, []byte{1}) {
		t.Fatal("Write after CloseConn succeeded")
	}
	s.CloseConn(p1, CloseControl) // unknown now: no-op
}

// TestCloseReportsShutdown: Close tears every connection down, reports each
// to the Sink once and counts it as shutdown.
func TestCloseReportsShutdown(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s, err := New(Config{Listen: "127.0.0.1:0", Loops: 2}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var peers []netip.AddrPort
	for range 10 {
		_, p := dial(t, s.Addr(), sink)
		peers = append(peers, p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if sink.closed[p] != 1 {
			t.Fatalf("peer %v closed %d times", p, sink.closed[p])
		}
	}
	if st := s.Stats(); st.Closes[CloseShutdown] != 10 || st.ConnsOpen != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Start(); err != ErrClosed {
		t.Fatalf("Start after Close: %v", err)
	}
	if s.Write(peers[0], []byte{1}) {
		t.Fatal("Write after Close succeeded")
	}
	s.Flush()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Listen: ln.Addr().String(), Loops: 1}, newRecSink())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start on a port in use succeeded")
	}
	s2, _ := New(Config{}, newRecSink())
	c1, c2 := net.Pipe()
	defer c2.Close()
	if err := s2.Enroll(c1); err != ErrNotTCPConn {
		t.Fatalf("Enroll(pipe) = %v", err)
	}
}

// TestEnrollDirect: a connection accepted elsewhere (net.Listener) and handed
// over with Enroll is served from its first byte, in the listener-less mode.
func TestEnrollDirect(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s, err := New(Config{Loops: 2}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enroll(&net.TCPConn{}); err != ErrNotStarted {
		t.Fatalf("Enroll before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustWrite(t, c, framed(bindingRequest(t, "a:b"), payload(64, 1))) // before Enroll: nothing is lost
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enroll(sc); err != nil {
		t.Fatal(err)
	}
	peer := sink.peerOf(t, c.LocalAddr())
	sink.wait(t, "2 frames", func() bool { return len(sink.frames[peer]) == 2 })
	s.Write(peer, payload(10, 2))
	s.Flush()
	readFrames(t, c, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); sink.closed[peer] != 1 || st.Closes[CloseShutdown] != 1 || st.ConnsOpen != 0 {
		t.Fatalf("after Close: closed=%d stats %+v", sink.closed[peer], st)
	}
	if err := s.Enroll(&net.TCPConn{}); err != ErrClosed {
		t.Fatalf("Enroll after Close: %v", err)
	}
}
