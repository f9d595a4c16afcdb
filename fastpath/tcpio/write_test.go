package tcpio

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// waitFlushed waits until FramesOut reaches n.
func waitFlushed(t testing.TB, s *Server, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().FramesOut < n {
		if time.Now().After(deadline) {
			t.Fatalf("FramesOut %d, want %d", s.Stats().FramesOut, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// drain reads and discards everything the server sends to c.
func drain(c net.Conn) {
	go func() { _, _ = io.Copy(io.Discard, c) }() // ends when c is closed at cleanup
}

// TestWriteAllocs: Write allocates nothing once a connection's buffers have
// reached their working size; Flush allocates only inside gnet, per loop.
func TestWriteAllocs(t *testing.T) {
	sink := newRecSink()
	s := startServer(t, Config{Loops: 1}, sink)
	c, peer := dial(t, s.Addr(), sink)
	drain(c)
	pkt := payload(1200, 1)
	const perRound = 100
	var sent uint64
	for range 3 { // warm both halves of the double buffer
		for range perRound {
			s.Write(peer, pkt)
		}
		s.Flush()
		sent += perRound
		waitFlushed(t, s, sent)
	}
	allocs := testing.AllocsPerRun(perRound-1, func() { s.Write(peer, pkt) })
	if allocs != 0 {
		t.Fatalf("Write allocates %v per call", allocs)
	}
	s.Flush()
	sent += perRound
	waitFlushed(t, s, sent)

	flushAllocs := testing.AllocsPerRun(50, func() {
		s.Write(peer, pkt)
		s.Flush()
		sent++
		waitFlushed(t, s, sent)
	})
	t.Logf("Write+Flush+wait: %v allocs per round (gnet task node + Execute closure per loop)", flushAllocs)
	if flushAllocs > 4 {
		t.Fatalf("Flush allocates %v per call with one loop", flushAllocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.Write(netip.MustParseAddrPort("[::1%tcp]:1"), pkt) }); allocs != 0 {
		t.Fatalf("Write to an unknown peer allocates %v", allocs)
	}
}

// BenchmarkWriteFlush: frames per Flush to one connection whose client reads
// everything; bytes are payload bytes.
func BenchmarkWriteFlush(b *testing.B) {
	for _, size := range []int{200, 1200} {
		for _, batch := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("size=%d/batch=%d", size, batch), func(b *testing.B) {
				benchWriteFlush(b, size, batch)
			})
		}
	}
}

func benchWriteFlush(b *testing.B, size, batch int) {
	sink := newRecSink()
	s := startServer(b, Config{Loops: 1}, sink)
	c, peer := dial(b, s.Addr(), sink)
	drain(c)
	pkt := payload(size, 1)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for !s.Write(peer, pkt) { // over the bound: let the loop and the reader catch up
			s.Flush()
			time.Sleep(10 * time.Microsecond)
		}
		if i%batch == batch-1 {
			s.Flush()
		}
	}
	s.Flush()
	waitFlushed(b, s, uint64(b.N))
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.FramesOut)/float64(max(st.Writes, 1)), "frames/write")
}

// BenchmarkWriteParallel: several goroutines (fastpath cores) writing to
// their own connections, each flushing every 16 frames.
func BenchmarkWriteParallel(b *testing.B) {
	const conns = 64
	sink := newRecSink()
	s := startServer(b, Config{Loops: 2}, sink)
	peers := make(chan netip.AddrPort, conns)
	for range conns {
		c, p := dial(b, s.Addr(), sink)
		drain(c)
		peers <- p
	}
	pkt := payload(1200, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		peer := <-peers
		i := 0
		for pb.Next() {
			for !s.Write(peer, pkt) {
				s.Flush()
				time.Sleep(10 * time.Microsecond)
			}
			if i++; i%16 == 0 {
				s.Flush()
			}
		}
		s.Flush()
		peers <- peer
	})
}

// countSink counts frames without allocating.
type countSink struct{ frames, closed atomic.Int64 }

func (c *countSink) TCPFrame(netip.AddrPort, []byte) { c.frames.Add(1) }
func (c *countSink) TCPClosed(netip.AddrPort)        { c.closed.Add(1) }

// TestReceiveAllocs: the receive path (gnet read, Peek, parse, Sink, Discard)
// allocates nothing per frame, including frames split across reads.
func TestReceiveAllocs(t *testing.T) {
	sink := &countSink{}
	s := startServer(t, Config{Loops: 1}, sink)
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustWrite(t, c, framed(bindingRequest(t, "a:b")))
	var ps [][]byte
	for i := range 64 {
		ps = append(ps, payload(1+i*23%1500, byte(i)))
	}
	chunk := framed(ps...)
	send := func(rounds int) {
		for r := range rounds {
			cut := 1 + r*97%(len(chunk)-1) // split frames across writes
			mustWrite(t, c, chunk[:cut])
			mustWrite(t, c, chunk[cut:])
		}
	}
	waitFrames := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for sink.frames.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d frames, want %d", sink.frames.Load(), n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	send(50) // warm gnet's buffers and pools
	waitFrames(1 + 50*64)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	send(200)
	waitFrames(1 + 250*64)
	runtime.ReadMemStats(&after)
	perFrame := float64(after.Mallocs-before.Mallocs) / (200 * 64)
	t.Logf("%.4f allocations per received frame (whole process, client included)", perFrame)
	if perFrame > 0.05 {
		t.Fatalf("receive path allocates: %.3f per frame", perFrame)
	}
}

// BenchmarkNaiveConnWrite is the comparison for BenchmarkWriteFlush: the
// goroutine-per-connection way, one framed net.Conn.Write (one syscall) per packet.
func BenchmarkNaiveConnWrite(b *testing.B) {
	for _, size := range []int{200, 1200} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, _ = io.Copy(io.Discard, c)
					_ = c.Close()
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := framed(payload(size, 1))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
