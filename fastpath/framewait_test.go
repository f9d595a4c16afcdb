package fastpath

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// spin busy-waits d: the gap between a publisher's packets of one frame,
// shorter than time.Sleep can express.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// TestFrameWait runs the real loop: a publisher sends frames of 4 packets
// with 10 µs between them and the marker on the last. With the frame wait
// each player gets each frame as one GSO send of 4 segments; the run is
// compared with the wait off, where the loop may fan out a frame's first
// packet alone.
func TestFrameWait(t *testing.T) {
	const subs, frames, perFrame = 4, 20, 4
	sends := func(wait time.Duration) (gsoSends, gsoSegs, tx uint64) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 1, GSO: true, FrameWait: wait}, subs: subs, rcvbuf: 1 << 20})
		r.e.Start()
		if !r.e.Status().GSO {
			t.Skip("UDP GSO (UDP_SEGMENT) is not available on this kernel")
		}
		buf := make([]byte, 1500)
		for range frames {
			for i := range perFrame {
				r.marker = i == perFrame-1
				sendTo(t, r.pub.fd, r.e.Port(), r.next(buf))
				spin(10 * time.Microsecond)
			}
			time.Sleep(3 * time.Millisecond)
		}
		began := time.Now()
		waitFor(t, func() bool {
			return r.e.Stats().TxPackets-r.e.Stats().RTCPOut-r.e.Stats().PLIOut >= subs*frames*perFrame
		})
		t.Logf("delivered %v after the last frame", time.Since(began))
		s := r.e.Stats()
		for i, p := range r.players {
			if got := len(readAll(p.fd)); got < frames*perFrame {
				t.Errorf("player %d got %d packets, want %d", i, got, frames*perFrame)
			}
		}
		return s.GSOSends, s.GSOSegments, s.TxPackets - s.RTCPOut - s.PLIOut
	}
	// 20 ms instead of the default 50 µs: the same mechanism (the wait ends
	// at the marker), with room for a test process descheduled mid-frame
	// on a loaded machine.
	on, onSegs, onTx := sends(20 * time.Millisecond)
	off, offSegs, offTx := sends(-1)
	t.Logf("frame wait on: %d GSO sends, %d segments of %d packets; off: %d sends, %d segments of %d",
		on, onSegs, onTx, off, offSegs, offTx)
	// Every packet rode in a GSO run, none went alone, and no frame was
	// split (a descheduled loop may still merge two frames into one run).
	if onSegs != subs*frames*perFrame || on > subs*frames {
		t.Errorf("frame wait on: %d GSO sends of %d segments, want at most one send per player per frame (%d) holding all %d packets",
			on, onSegs, subs*frames, subs*frames*perFrame)
	}
}

// TestFrameWaitBounded: a frame whose marker is slow to come, while other
// datagrams keep the socket busy, is fanned out once FrameWait has passed
// on the loop's own clock; the loop does not read on for as long as input
// keeps coming. Before the loop starts, its socket is filled with the
// frame's first packet (marker clear), then junk, then the frame's last
// packet (marker set). Reading the junk takes the loop far longer than
// FrameWait (tens of thousands of datagrams against 1 ms), so a bounded
// wait expires before the last packet (the loop's expiry counter moves),
// while an unbounded one would read on to the marker and never expire. A
// loop slowed down by load reads less junk per millisecond of its clock, so
// load makes the expiry come sooner, not later: no wall-clock bound here.
func TestFrameWaitBounded(t *testing.T) {
	const wait, junk = time.Millisecond, 20000
	r := newRig(t, rigOptions{cfg: Config{Cores: 1, FrameWait: wait, SockBuf: 64 << 20}, subs: 1, rcvbuf: 1 << 20})
	flood := newSink(t, 0)
	buf := make([]byte, 1500)
	r.marker = false
	sendTo(t, r.pub.fd, r.e.Port(), r.next(buf)) // the frame opens
	to := &unix.SockaddrInet4{Port: r.e.Port(), Addr: [4]byte{127, 0, 0, 1}}
	for range junk {
		if err := unix.Sendto(flood.fd, []byte{0xff, 1, 2, 3}, 0, to); err != nil {
			t.Fatal(err)
		}
	}
	r.marker = true
	sendTo(t, r.pub.fd, r.e.Port(), r.next(buf)) // the frame's last packet, behind the junk
	r.e.Start()

	player := r.players[0].fd
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	if err := unix.SetsockoptTimeval(player, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, _, err := unix.Recvfrom(player, buf, 0); err != nil {
			t.Fatalf("the player got %d of the frame's 2 packets: %v", i, err)
		}
	}
	s := r.e.Stats()
	if s.Drops[DropGarbage] != junk {
		t.Fatalf("the loop read %d of %d junk datagrams: the socket dropped some (receive buffer too small)", s.Drops[DropGarbage], junk)
	}
	if s.FrameWaitExpired == 0 {
		t.Errorf("the frame wait never expired: the loop read %d datagrams on to the marker instead of sending the open frame after %v", junk, wait)
	}
	t.Logf("frame wait expired %d times while %d junk datagrams were queued (frame_wait %v)", s.FrameWaitExpired, junk, wait)
}
