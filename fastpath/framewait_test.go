package fastpath

import (
	"testing"
	"time"
	"unsafe"

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

// TestFrameWaitBounded: a frame whose marker never comes, while other
// datagrams keep the socket busy, is still fanned out after FrameWait. The
// send time is the kernel's receive timestamp on the player's socket
// (loopback delivers within the send), so the test's own scheduling does
// not count.
func TestFrameWaitBounded(t *testing.T) {
	const wait = time.Millisecond
	r := newRig(t, rigOptions{cfg: Config{Cores: 1, FrameWait: wait}, subs: 1, rcvbuf: 1 << 20})
	r.e.Start()
	player := r.players[0].fd
	if err := unix.SetsockoptInt(player, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
	flood := newSink(t, 0)
	done := make(chan struct{})
	go func() { // junk the loop must read and drop, back to back, for 50 ms
		defer close(done)
		junk := []byte{0xff, 1, 2, 3}
		for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
			_ = unix.Sendto(flood.fd, junk, 0, &unix.SockaddrInet4{Port: r.e.Port(), Addr: [4]byte{127, 0, 0, 1}})
		}
	}()
	time.Sleep(5 * time.Millisecond)
	buf := make([]byte, 1500)
	start := time.Now()
	sendTo(t, r.pub.fd, r.e.Port(), r.next(buf)) // marker clear: the frame stays open
	<-done
	waitFor(t, func() bool { return r.e.Stats().TxPackets > 0 })
	oob := make([]byte, 128)
	_, oobn, _, _, err := unix.Recvmsg(player, buf, oob, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatalf("the player got nothing: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 || msgs[0].Header.Type != unix.SCM_TIMESTAMPNS {
		t.Fatalf("no receive timestamp (%v)", err)
	}
	ts := *(*unix.Timespec)(unsafe.Pointer(&msgs[0].Data[0]))
	took := time.Unix(ts.Unix()).Sub(start)
	if took > 10*wait {
		t.Errorf("the open frame's packet went out after %v, want about FrameWait (%v)", took, wait)
	}
	if s := r.e.Stats(); s.FrameWaitExpired == 0 || s.Drops[DropGarbage] == 0 {
		t.Errorf("frame wait expired %d times, garbage dropped %d: want both > 0", s.FrameWaitExpired, s.Drops[DropGarbage])
	}
	t.Logf("sent %v after it arrived (frame_wait %v), under a flood of %d junk datagrams", took, wait, r.e.Stats().Drops[DropGarbage])
}
