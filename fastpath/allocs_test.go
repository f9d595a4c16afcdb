package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pion/rtcp"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
	"github.com/fanout/fanout/fastpath/udpio"
)

// zeroAllocs fails when f allocates in steady state (after warm-up).
func zeroAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	for range 50 {
		f()
	}
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %.1f allocs per run, want 0", name, n)
	}
}

// TestAllocsPerPacket pins zero allocations on every per-packet path.
func TestAllocsPerPacket(t *testing.T) {
	buf := make([]byte, 1500)
	t.Run("classify", func(t *testing.T) {
		pkt := append([]byte{0x80, 96}, make([]byte, 100)...)
		zeroAllocs(t, "Classify", func() { _ = Classify(pkt) })
	})
	t.Run("stripExtensions", func(t *testing.T) {
		p := make([]byte, 200)
		p[0] = 0x90
		binary.BigEndian.PutUint16(p[14:], 1)
		zeroAllocs(t, "stripExtensions", func() { _ = stripExtensions(buf, p) })
	})
	t.Run("ring+slab", func(t *testing.T) {
		r, s := newRing(16), newSlab(0, 4)
		zeroAllocs(t, "ring push/pop + slab get/put", func() {
			p := s.get()
			r.push(msg{p: p, op: opFanout})
			m, _ := r.pop()
			m.p.refs.Add(-1)
			s.put(m.p)
		})
	})
	t.Run("out", func(t *testing.T) {
		e, err := New(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Cores: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		dst := newSink(t, 4096)
		var sa udpio.Sockaddr
		e.conns[0].EncodeAddr(&sa, dst.addr)
		o := udpio.NewOut(8, 8*2048, true)
		zeroAllocs(t, "Out.Commit+Flush", func() {
			for range 4 {
				b := o.Buf()
				o.Commit(copy(b, buf[:1000]), &sa, 7)
			}
			o.Flush(e.conns[0])
		})
		in := udpio.NewBatch(8)
		zeroAllocs(t, "Batch.TryRecv", func() { _ = in.TryRecv(e.conns[0]) })
	})
	t.Run("fanout/local", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 1, GSO: true}, subs: 8, rcvbuf: 4096})
		zeroAllocs(t, "publisher RTP → 8 players, one core", func() { r.drive(0, r.next(buf)) })
		s := r.e.Stats()
		if s.TxPackets < 8*250 || s.DropTotal() != 0 {
			t.Fatalf("tx %d drops %v", s.TxPackets, s.Drops)
		}
	})
	t.Run("fanout/local/aes-cm", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 1, GSO: true}, subs: 8, rcvbuf: 4096, profile: cm})
		zeroAllocs(t, "AES_CM_128_HMAC_SHA1_80 publisher RTP → 8 players, one core", func() { r.drive(0, r.next(buf)) })
		if s := r.e.Stats(); s.TxPackets < 8*250 || s.DropTotal() != 0 {
			t.Fatalf("tx %d drops %v", s.TxPackets, s.Drops)
		}
	})
	t.Run("fanout/cross-core", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 2, GSO: true}, subs: 8, rcvbuf: 4096,
			playerCore: func(i int) int { return i % 2 }})
		zeroAllocs(t, "publisher RTP on core 0 → 4 local + 4 players on core 1", func() {
			r.drive(0, r.next(buf))
			r.drive(1)
		})
		cs := r.e.CoreStats()
		if cs[1].RingIn == 0 || cs[0].TxPackets < 4*250 || cs[1].TxPackets < 4*250 {
			t.Fatalf("per-core stats %+v", cs)
		}
	})
	t.Run("handoff", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 2}, subs: 2, rcvbuf: 4096, pubCore: 0,
			playerCore: func(int) int { return 0 }})
		zeroAllocs(t, "publisher RTP landing on core 1, owned by core 0", func() {
			r.drive(1, r.next(buf))
			r.drive(0)
			r.drive(1) // takes its buffer back
		})
		if cs := r.e.CoreStats(); cs[1].Handoffs == 0 || cs[0].TxPackets == 0 {
			t.Fatalf("per-core stats %+v", cs)
		}
	})
	t.Run("rtcp/pli", func(t *testing.T) {
		r := newRig(t, rigOptions{cfg: Config{Cores: 2}, subs: 2, rcvbuf: 4096,
			playerCore: func(int) int { return 1 }})
		r.drive(0)
		r.drive(1)
		pliFrom := r.players[0].addr
		ctx := r.playerRTCPContext(t)
		pli := make([]byte, 12)
		pli[0], pli[1] = 0x80|rtcpx.FmtPLI, rtcpx.TypePSFB
		binary.BigEndian.PutUint16(pli[2:], 2)
		binary.BigEndian.PutUint32(pli[8:], pubSSRC)
		enc := make([]byte, 0, 100)
		var rh rtcp.Header
		zeroAllocs(t, "player PLI on core 1 → keyframe request on core 0", func() {
			out, err := ctx.EncryptRTCP(enc[:0], pli, &rh)
			if err != nil {
				t.Fatal(err)
			}
			c := r.e.cores[1]
			c.begin()
			c.handle(out, pliFrom)
			c.finish()
			r.drive(0)
		})
		if s := r.e.Stats(); s.PLIIn == 0 || s.PLIOut == 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestRefcountMisuse: a buffer released twice, or retained after it was
// freed, panics instead of corrupting another core's packet.
func TestRefcountMisuse(t *testing.T) {
	e, err := New(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := e.cores[0]
	p := c.getPkt()
	c.release(p)
	mustPanic(t, "double release", func() { c.release(p) })
	p.refs.Store(0)
	mustPanic(t, "retain after free", func() { p.retain() })
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", name)
		}
	}()
	f()
}

// TestPickCore: round robin over the cores.
func TestPickCore(t *testing.T) {
	e, err := New(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Cores: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 7 {
		if got := e.PickCore(); got != i%3 {
			t.Fatalf("pick %d = %d", i, got)
		}
	}
	s := route.Session{ID: 5, Core: -1}
	if e.ownerOf(&s) != 5%3 {
		t.Errorf("derived owner %d", e.ownerOf(&s))
	}
}
