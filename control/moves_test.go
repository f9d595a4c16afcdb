package control

import (
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
