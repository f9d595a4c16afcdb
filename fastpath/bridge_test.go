package fastpath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/fanout/fanout/fastpath/route"
)

// virtualRig turns a rig's publisher (session 1) into a virtual one: no
// keys, no peer, fed by Inject.
func virtualRig(t testing.TB, cores, subs int, playerCore func(int) int) *rig {
	t.Helper()
	r := newRig(t, rigOptions{cfg: Config{Cores: cores}, subs: subs, rcvbuf: 1 << 20, playerCore: playerCore})
	old := r.e.Table()
	b := route.NewBuilder(old.Version+1, route.SessionID(subs+1), 1)
	for i := 1; i < len(old.Sessions); i++ {
		s := old.Sessions[i]
		if s.ID == 1 {
			s.Keys, s.Peer, s.Virtual = nil, netip.AddrPort{}, true
			b.AddSession(s)
			continue
		}
		b.AddSession(s, s.Peer)
	}
	b.AddStream(*old.Stream(1))
	r.e.Publish(b.Table())
	return r
}

// nextPlain fills the rig's plaintext publisher packet for the next seq.
func (r *rig) nextPlain() []byte {
	r.seq++
	p := r.plain
	p[0], p[1] = 0x80, pubPT
	binary.BigEndian.PutUint16(p[2:], r.seq)
	binary.BigEndian.PutUint32(p[4:], uint32(r.seq)*3000)
	binary.BigEndian.PutUint32(p[8:], pubSSRC)
	binary.BigEndian.PutUint32(p[12:], uint32(r.seq))
	return p
}

// TestInject: packets of a virtual publisher reach every player, on its
// own core and across cores, rewritten and byte-exact, with real loops.
func TestInject(t *testing.T) {
	for _, cores := range []int{1, 2} {
		t.Run(fmt.Sprintf("cores=%d", cores), func(t *testing.T) {
			const subs, packets = 4, 100
			r := virtualRig(t, cores, subs, func(i int) int { return i % cores })
			r.e.Start()
			var sent [][]byte
			for i := range packets {
				p := r.nextPlain()
				if !r.e.Inject(1, p) {
					t.Fatalf("packet %d refused", i)
				}
				sent = append(sent, bytes.Clone(p[12:]))
				if i%8 == 7 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			waitFor(t, func() bool { return r.e.Stats().TxPackets >= subs*packets })
			for i, p := range r.players {
				checkPlayer(t, i, r.keys, readAll(p.fd), sent, 0xa0000000+uint32(i))
			}
			if bs := r.e.BridgeStats(); bs.Injected != packets || bs.InjectDropped != 0 {
				t.Errorf("bridge stats %+v", bs)
			}
			if r.e.Inject(2, r.nextPlain()) || r.e.Inject(1, make([]byte, 8)) || r.e.Inject(1, make([]byte, 2000)) {
				t.Errorf("Inject took a player's packet or a bad size")
			}
		})
	}
}

// TestTap: the owner core copies every decrypted RTP packet and each
// sender report of a tapped publisher, with or without players; a full
// ring drops and counts; Close ends Next.
func TestTap(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 0})
	tap := r.e.OpenTap(1, 1, 8)
	buf := make([]byte, 1500)
	for range 3 {
		r.drive(0, r.next(buf))
		p, ok := tap.Next(nil)
		if !ok || p.SR || p.Kind != route.KindVideo || !bytes.Equal(p.Data, r.plain) {
			t.Fatalf("tap gave %+v, %v", p, ok)
		}
		if d := time.Since(p.At); d < 0 || d > time.Second {
			t.Fatalf("arrival %v ago", d)
		}
	}
	sr := &rtcp.SenderReport{SSRC: pubSSRC, NTPTime: 0xe1234567_80000000, RTPTime: 9000}
	raw, _ := sr.Marshal()
	var rh rtcp.Header
	enc, err := r.pubCtx.EncryptRTCP(nil, raw, &rh)
	if err != nil {
		t.Fatal(err)
	}
	c := r.e.cores[0]
	c.begin()
	c.handle(enc, r.pub.addr)
	c.finish()
	p, ok := tap.Next(nil)
	if !ok || !p.SR || p.NTP != sr.NTPTime || p.RTPTime != 9000 || p.Kind != route.KindVideo {
		t.Fatalf("sender report %+v, %v", p, ok)
	}
	for range 12 {
		r.drive(0, r.next(buf))
	}
	if tap.Dropped() != 5 {
		t.Errorf("dropped %d, want 5 (ring of 8, the reader still holds the report)", tap.Dropped())
	}
	done := make(chan bool)
	go func() {
		n := 0
		for {
			if _, ok := tap.Next(nil); !ok {
				done <- n == 7
				return
			}
			n++
		}
	}()
	time.Sleep(20 * time.Millisecond)
	tap.Close()
	if !<-done {
		t.Errorf("reader did not get the 7 queued packets before the close")
	}
	r.drive(0, r.next(buf))
	if tap.Written() != 3+1+7 {
		t.Errorf("written %d after close", tap.Written())
	}
}

// TestTapWakesReader: a reader blocked in Next is woken by the running core.
func TestTapWakesReader(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 2}, subs: 1})
	r.e.Start()
	tap := r.e.OpenTap(1, 1, 64)
	defer tap.Close()
	got := make(chan int)
	go func() {
		n := 0
		for n < 20 {
			if _, ok := tap.Next(nil); !ok {
				break
			}
			n++
		}
		got <- n
	}()
	buf := make([]byte, 1500)
	for range 20 {
		sendTo(t, r.pub.fd, r.e.Port(), r.next(buf))
		time.Sleep(time.Millisecond)
	}
	select {
	case n := <-got:
		if n != 20 {
			t.Fatalf("reader got %d", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader not woken")
	}
}

// TestRequestKeyframe: a request from any goroutine becomes one PLI from
// the publisher's owner core.
func TestRequestKeyframe(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 2}, subs: 1, pubCore: 1})
	r.drive(0)
	r.drive(1) // the ready player's own keyframe request
	before := r.e.CoreStats()[1].PLIOut
	if !r.e.RequestKeyframe(1) || r.e.RequestKeyframe(7) {
		t.Fatal("RequestKeyframe: wrong acceptance")
	}
	time.Sleep(keyframeInterval + 50*time.Millisecond)
	r.drive(0)
	r.drive(1)
	if cs := r.e.CoreStats(); cs[1].PLIOut != before+1 || cs[0].PLIOut != 0 {
		t.Fatalf("want one more PLI from the owner core (1): %+v", cs)
	}
}

// TestAllocsBridge pins zero allocations on Inject, its fan-out, the tap
// write on the core side and RequestKeyframe.
func TestAllocsBridge(t *testing.T) {
	t.Run("inject/local", func(t *testing.T) {
		r := virtualRig(t, 1, 4, nil)
		zeroAllocs(t, "Inject → owner core → 4 players", func() {
			r.e.Inject(1, r.nextPlain())
			r.drive(0)
		})
		if s := r.e.Stats(); s.TxPackets < 4*250 || s.DropTotal() != 0 {
			t.Fatalf("tx %d drops %v", s.TxPackets, s.Drops)
		}
	})
	t.Run("inject/cross-core", func(t *testing.T) {
		r := virtualRig(t, 2, 4, func(i int) int { return i % 2 })
		zeroAllocs(t, "Inject → core 0 → 2 local + 2 players on core 1", func() {
			r.e.Inject(1, r.nextPlain())
			r.drive(0)
			r.drive(1)
			r.drive(0)
		})
		if cs := r.e.CoreStats(); cs[0].TxPackets < 2*250 || cs[1].TxPackets < 2*250 {
			t.Fatalf("per-core stats %+v", cs)
		}
	})
	t.Run("tap", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 2, rcvbuf: 4096})
		tap := r.e.OpenTap(1, 1, 64)
		buf := make([]byte, 1500)
		zeroAllocs(t, "publisher RTP → tap copy + 2 players", func() {
			r.drive(0, r.next(buf))
		})
		if tap.Written() == 0 || tap.Dropped() == 0 {
			t.Fatalf("written %d dropped %d", tap.Written(), tap.Dropped())
		}
		zeroAllocs(t, "publisher RTP → tap → Next", func() {
			r.drive(0, r.next(buf))
			for {
				if p, _ := tap.Next(nil); len(p.Data) == 0 {
					t.Fatal("empty packet")
				}
				if tap.ring.head.Load()+1 == tap.ring.tail.Load() {
					break
				}
			}
		})
	})
	t.Run("keyframe", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 1})
		zeroAllocs(t, "RequestKeyframe → PLI", func() {
			r.e.RequestKeyframe(1)
			r.drive(0)
		})
	})
}

// TestVirtualKeyframeUpcall: a virtual publisher has no peer to send a PLI
// to, so its players' keyframe requests go up to control as UpKeyframe
// (control hands them to the relay that feeds it), coalesced the same way.
func TestVirtualKeyframeUpcall(t *testing.T) {
	r := virtualRig(t, 1, 1, func(int) int { return 0 })
	for range 3 {
		r.drive(0)
	}
	drain := func() (n int) {
		for {
			select {
			case u := <-r.e.Upcalls():
				if u.Kind == route.UpKeyframe && u.Session == 1 {
					n++
				}
				r.e.Release(u)
			default:
				return n
			}
		}
	}
	drain()
	time.Sleep(keyframeInterval + 10*time.Millisecond)
	for range 3 {
		if !r.e.RequestKeyframe(1) {
			t.Fatal("RequestKeyframe refused")
		}
	}
	r.drive(0)
	if n := drain(); n != 1 {
		t.Fatalf("%d UpKeyframe upcalls for three requests, want 1", n)
	}
	if cs := r.e.CoreStats(); cs[0].PLIOut != 0 {
		t.Fatalf("a PLI went out for a virtual publisher: %+v", cs[0])
	}
}
