package fastpath

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/udpio"
)

// sendTo sends b from fd to the engine's port on 127.0.0.1.
func sendTo(t testing.TB, fd int, port int, b []byte) {
	t.Helper()
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
}

// readAll takes every datagram queued on fd.
func readAll(fd int) [][]byte {
	var out [][]byte
	for {
		b := make([]byte, 2048)
		n, _, err := unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
		if err != nil {
			return out
		}
		out = append(out, b[:n])
	}
}

// TestForward runs real core loops over loopback: one publisher, players
// owned by every core, with and without GSO. Without BPF the publisher's
// flow lands by kernel hash and is handed to its owner when that is
// another core; every player must still get every packet, rewritten and
// byte-exact.
func TestForward(t *testing.T) {
	for _, tc := range []struct {
		cores int
		gso   bool
	}{{1, false}, {1, true}, {2, false}, {2, true}} {
		t.Run(fmt.Sprintf("cores=%d/gso=%v", tc.cores, tc.gso), func(t *testing.T) {
			const subs, packets, burst = 6, 120, 8
			r := newRig(t, rigOptions{cfg: Config{Cores: tc.cores, GSO: tc.gso}, subs: subs, rcvbuf: 1 << 20,
				playerCore: func(i int) int { return i % tc.cores }})
			r.e.Start()
			buf := make([]byte, 1500)
			var sent [][]byte
			for i := 0; i < packets; i += burst {
				for range burst {
					sendTo(t, r.pub.fd, r.e.Port(), r.next(buf))
					sent = append(sent, bytes.Clone(r.plain[12:]))
				}
				time.Sleep(2 * time.Millisecond)
			}
			waitFor(t, func() bool { return r.e.Stats().TxPackets-r.e.Stats().PLIOut-r.e.Stats().RTCPOut >= subs*packets })
			for i, p := range r.players {
				checkPlayer(t, i, r.keys, readAll(p.fd), sent, 0xa0000000+uint32(i))
			}
			cs := r.e.CoreStats()
			for _, s := range cs {
				t.Logf("core %d (cpu %d): rx %d tx %d handoffs %d ring-in %d gso %d/%d sleeps %d wakeups %d drops %d",
					s.Core, s.CPU, s.RxPackets, s.TxPackets, s.Handoffs, s.RingIn, s.GSOSends, s.GSOSegments,
					s.Sleeps, s.Wakeups, s.DropTotal())
			}
			for i := range tc.cores {
				if got, want := cs[i].TxPackets-cs[i].PLIOut-cs[i].RTCPOut, uint64(packets*subs/tc.cores); got != want {
					t.Errorf("core %d sent %d packets, want %d (its players' share)", i, got, want)
				}
			}
			if tc.gso && r.e.Status().GSO && r.e.Stats().GSOSends == 0 {
				t.Errorf("GSO on but no GSO sends")
			}
		})
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkPlayer decrypts what a player got and compares it with what the
// publisher sent: same payloads in order, the player's SSRC and payload
// type, consecutive sequence numbers.
func checkPlayer(t *testing.T, i int, keys *route.Keys, got [][]byte, sent [][]byte, ssrc uint32) {
	t.Helper()
	ctx, err := srtp.CreateContext(keys.LocalKey, keys.LocalSalt, keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sent) {
		t.Fatalf("player %d: got %d packets, want %d", i, len(got), len(sent))
	}
	var h rtp.Header
	var lastSeq uint16
	for j, enc := range got {
		plain, err := ctx.DecryptRTP(nil, enc, &h)
		if err != nil {
			t.Fatalf("player %d packet %d: %v", i, j, err)
		}
		if h.SSRC != ssrc || h.PayloadType != playerPT || (j > 0 && h.SequenceNumber != lastSeq+1) {
			t.Fatalf("player %d packet %d: ssrc %x pt %d seq %d after %d", i, j, h.SSRC, h.PayloadType, h.SequenceNumber, lastSeq)
		}
		lastSeq = h.SequenceNumber
		if !bytes.Equal(plain[12:], sent[j]) {
			t.Fatalf("player %d packet %d: payload differs", i, j)
		}
	}
}

// TestOutGSO: runs of equal size for one destination become one GSO send,
// a shorter datagram ends a run, and the receiver sees the datagrams split
// back as sent.
func TestOutGSO(t *testing.T) {
	conns, err := udpio.ListenGroup(udpio.Options{Addr: netip.MustParseAddrPort("127.0.0.1:0")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer conns[0].Close()
	if !udpio.ProbeGSO(conns[0]) {
		t.Fatal("kernel without UDP_SEGMENT (Linux < 4.18)")
	}
	a, b := newSink(t, 1<<20), newSink(t, 1<<20)
	var sa, sb udpio.Sockaddr
	conns[0].EncodeAddr(&sa, a.addr)
	conns[0].EncodeAddr(&sb, b.addr)
	o := udpio.NewOut(16, 64*2048, true)
	sizes := []struct {
		n   int
		dst *udpio.Sockaddr
		key uint64
	}{{1000, &sa, 1}, {1000, &sa, 1}, {1000, &sa, 1}, {700, &sa, 1}, {1000, &sa, 1}, {300, &sb, 2}, {300, &sb, 2}, {400, &sb, 2}}
	for i, s := range sizes {
		buf := o.Buf()
		for j := range s.n {
			buf[j] = byte(i)
		}
		o.Commit(s.n, s.dst, s.key)
	}
	if o.N != 4 || o.Packets != len(sizes) {
		t.Fatalf("%d messages for %d datagrams, want 4 (a:1000×3+700, a:1000, b:300×2, b:400)", o.N, o.Packets)
	}
	if sends, segs := o.GSOCounts(); sends != 2 || segs != 6 {
		t.Fatalf("GSO runs %d with %d datagrams, want 2 with 6", sends, segs)
	}
	sent, dropped, failed := o.Flush(conns[0])
	if sent != len(sizes) || dropped != 0 || failed {
		t.Fatalf("flush: sent %d dropped %d gso failed %v", sent, dropped, failed)
	}
	time.Sleep(20 * time.Millisecond)
	ga, gb := readAll(a.fd), readAll(b.fd)
	var lens []int
	for _, d := range append(ga, gb...) {
		lens = append(lens, len(d))
	}
	if fmt.Sprint(lens) != "[1000 1000 1000 700 1000 300 300 400]" {
		t.Fatalf("received sizes %v", lens)
	}
	if ga[3][0] != 3 || gb[2][0] != 7 {
		t.Fatalf("datagram contents out of order")
	}
}
