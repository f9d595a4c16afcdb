package tcpio

import (
	"net"
	"net/netip"
	"testing"
)

// TestMaxConnsPerIP: a source at the bound has its next connection closed
// at accept and counted as ip_limit; another source still connects, a
// closed connection frees its slot, and exempt loopback is not counted.
func TestMaxConnsPerIP(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startServer(t, Config{Loops: 1, MaxConnsPerIP: 2}, sink)
	from := func(src string) *net.TCPConn {
		t.Helper()
		laddr := net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0))
		c, err := net.DialTCP("tcp", laddr, net.TCPAddrFromAddrPort(s.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		mustWrite(t, c, framed(bindingRequest(t, "a:b")))
		return c
	}
	a1, _ := from("127.0.0.1"), from("127.0.0.1")
	sink.wait(t, "two frames", func() bool { return len(sink.frames) == 2 })
	over := from("127.0.0.1")
	expectEOF(t, over)
	waitStats(t, s, func(st Stats) bool { return st.Closes[CloseIPLimit] == 1 })
	from("127.0.0.2") // another source is not affected
	waitStats(t, s, func(st Stats) bool { return st.FramesIn == 3 })
	_ = a1.Close()
	waitStats(t, s, func(st Stats) bool { return st.Closes[ClosePeer] == 1 })
	from("127.0.0.1") // the freed slot
	waitStats(t, s, func(st Stats) bool { return st.FramesIn == 4 && st.Closes[CloseIPLimit] == 1 })

	ex := startServer(t, Config{Loops: 1, MaxConnsPerIP: 1, ExemptLoopback: true}, newRecSink())
	for range 3 {
		c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(ex.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		mustWrite(t, c, framed(bindingRequest(t, "a:b")))
	}
	waitStats(t, ex, func(st Stats) bool { return st.FramesIn == 3 && st.Closes[CloseIPLimit] == 0 })
}
