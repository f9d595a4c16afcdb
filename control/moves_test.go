package control

import (
	"github.com/fanout/fanout/fastpath/route"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestAddrMovesWindow: maxAddrMoves moves pass in a burst, the next is
// refused until the first leaves the window, and refusals do not use up
// the window.
func TestAddrMovesWindow(t *testing.T) {
	var m addrMoves
	t0 := time.Now().UnixNano()
	for i := range maxAddrMoves {
		if !m.allow(t0 + int64(i)) {
			t.Fatalf("move %d refused", i+1)
		}
	}
	for i := range 3 {
		if m.allow(t0 + int64(maxAddrMoves+i)) {
			t.Fatalf("move %d in the window allowed", maxAddrMoves+1+i)
		}
	}
	if !m.allow(t0 + int64(addrMoveWindow)) {
		t.Fatal("a move after the window refused")
	}
	if m.allow(t0 + int64(addrMoveWindow)) {
		t.Fatal("the second move after the window allowed (moves 2..4 are still in it)")
	}
}

// TestSessionAddrsBounded: moves past maxSessionAddrs forget the oldest
// UDP address that is not the peer, so a session's addresses (route-table
// entries) stay bounded however long it hops; refusals are counted.
func TestSessionAddrsBounded(t *testing.T) {
	s := &Server{}
	s.byAddr = map[netip.AddrPort]*session{}
	ss := &session{keys: &route.Keys{}} // DTLS done: new addresses are moves
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 1}), uint16(1000+i))
	}
	for i := range 40 {
		ss.moves = addrMoves{} // as if each came after the window
		if !s.addAddrLocked(ss, addr(i)) {
			t.Fatalf("address %d refused", i)
		}
		if i == 0 {
			ss.peer = addr(0) // the peer stays while others come and go
		}
		if len(ss.addrs) > maxSessionAddrs || len(s.byAddr) != len(ss.addrs) {
			t.Fatalf("after %d: %d addresses, %d in byAddr", i+1, len(ss.addrs), len(s.byAddr))
		}
	}
	if !slices.Contains(ss.addrs, addr(0)) || !slices.Contains(ss.addrs, addr(39)) || slices.Contains(ss.addrs, addr(1)) {
		t.Errorf("kept %v", ss.addrs)
	}
	ss.moves = addrMoves{}
	for i := range maxAddrMoves {
		if !s.addAddrLocked(ss, addr(100+i)) {
			t.Fatalf("move %d of a fresh window refused", i+1)
		}
	}
	if s.addAddrLocked(ss, addr(200)) || s.counts.AddrMovesRefused != 1 {
		t.Errorf("a move over the rate: refused %d", s.counts.AddrMovesRefused)
	}
	// Before DTLS, a client checking from many candidates at once is not
	// moving: all are answered, the addresses stay bounded.
	checking := &session{}
	for i := range 3 * maxAddrMoves {
		if !s.addAddrLocked(checking, addr(300+i)) {
			t.Fatalf("candidate %d of a session still checking refused", i+1)
		}
	}
	if len(checking.addrs) > maxSessionAddrs {
		t.Errorf("a checking session holds %d addresses", len(checking.addrs))
	}
}
