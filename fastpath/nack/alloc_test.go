package nack

import "testing"

// TestZeroAlloc pins every per-packet method at zero allocations.
func TestZeroAlloc(t *testing.T) {
	var r Receiver
	h := NewHistory(VideoHistory)
	pkt := rtpPacket(1, 96, 1100)
	dst := make([]uint16, 0, 64)
	buf := make([]byte, 1500)
	seqs := []uint16{1, 2, 3, 40, 41, 90}
	var seq uint16
	now := int64(0)
	cases := map[string]func(){
		"Receiver.Push": func() {
			seq += 1 + seq%3 // a hole every other packet
			now += ms
			r.Push(seq, now)
			r.Push(seq-1, now)
		},
		"Receiver.Collect": func() { now += ms; _ = r.Collect(now, 30*ms, dst[:0]) },
		"History.Put":      func() { seq++; h.Put(seq, pkt) },
		"History.Get":      func() { _, _ = h.Get(seq) },
		"BuildNACK":        func() { _, _ = BuildNACK(buf, 1, 2, seqs) },
		"ParseNACK": func() {
			n := 0
			ParseNACK(buf[12:28], func(uint16) { n++ })
		},
	}
	for name, f := range cases {
		f() // warm up
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

func BenchmarkReceiverPush(b *testing.B) {
	var r Receiver
	b.ReportAllocs()
	seq := uint16(0)
	for i := 0; b.Loop(); i++ {
		seq++
		if i%50 == 0 {
			seq++ // 2 % loss
		}
		r.Push(seq, int64(i)*ms/10)
	}
}

func BenchmarkReceiverCollect(b *testing.B) {
	for _, holes := range []int{8, 128, MaxMissing} {
		b.Run("holes="+itoa(holes), func(b *testing.B) {
			var r Receiver
			r.Push(0, 0)
			for i := 1; i <= holes; i++ {
				r.Push(uint16(2*i), 0)
			}
			dst := make([]uint16, 0, MaxMissing)
			b.ReportAllocs()
			now := 10 * ms
			for b.Loop() {
				// A 500 ms retry interval and a clock that wraps before 1 s
				// keep every hole alive: each call scans all of them.
				_ = r.Collect(now, 400*ms, dst[:0])
				now += ms
				if now > 900*ms {
					now = 10 * ms
				}
			}
		})
	}
}

func BenchmarkHistory(b *testing.B) {
	h := NewHistory(VideoHistory)
	pkt := rtpPacket(1, 96, 1150)
	b.Run("op=put", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(pkt)))
		seq := uint16(0)
		for b.Loop() {
			seq++
			h.Put(seq, pkt)
		}
	})
	b.Run("op=get", func(b *testing.B) {
		b.ReportAllocs()
		seq := uint16(0)
		for b.Loop() {
			seq++
			_, _ = h.Get(seq)
		}
	})
}

func BenchmarkBuildNACK(b *testing.B) {
	seqs := seqRange(100, 64)
	buf := make([]byte, 1200)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = BuildNACK(buf, 1, 2, seqs)
	}
}

func BenchmarkParseNACK(b *testing.B) {
	seqs := seqRange(100, 64)
	buf := make([]byte, 1200)
	n, _ := BuildNACK(buf, 1, 2, seqs)
	b.ReportAllocs()
	sum := 0
	for b.Loop() {
		ParseNACK(buf[12:n], func(s uint16) { sum += int(s) })
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
