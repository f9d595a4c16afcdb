package twcc

import (
	"strconv"
	"testing"
)

func TestZeroAlloc(t *testing.T) {
	var r Recorder
	pkt := rtpWithExt(t, 0xbede, map[uint8][]byte{1: {0xaa}, 3: {0x12, 0x34}})
	dst := make([]byte, 1200)
	seq, now := uint16(0), int64(0)
	cases := map[string]func(){
		"Record": func() { seq++; now += 100 * us; r.Record(seq, now) },
		"BuildFeedback": func() {
			for range 50 {
				seq += 1 + uint16(now%3/2)
				now += 300 * us
				r.Record(seq, now)
			}
			_, _ = r.BuildFeedback(dst, 1, 2, 0)
		},
		"TransportSeq": func() { _, _ = TransportSeq(pkt, 3) },
	}
	for name, f := range cases {
		f()
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	seq := uint16(0)
	for i := 0; b.Loop(); i++ {
		seq++
		r.Record(seq, int64(i)*100*us)
		if i%1000 == 999 {
			r.start = r.highest + 1 // as if reported
		}
	}
}

// BenchmarkBuildFeedback builds one feedback for pkts packets (100 ms of a
// 1, 2.5 and 10 Mbps publisher) with 2 % loss.
func BenchmarkBuildFeedback(b *testing.B) {
	for _, pkts := range []int{10, 25, 100, 1000} {
		b.Run("pkts="+strconv.Itoa(pkts), func(b *testing.B) {
			var r Recorder
			dst := make([]byte, 1200)
			seq, now := uint16(0), int64(0)
			b.ReportAllocs()
			for b.Loop() {
				for i := range pkts {
					seq++
					now += 1000 * us
					if i%50 != 7 {
						r.Record(seq, now)
					}
				}
				for r.Pending() {
					_, _ = r.BuildFeedback(dst, 1, 2, 0)
				}
			}
		})
	}
}

func BenchmarkTransportSeq(b *testing.B) {
	pkt := rtpWithExt(b, 0xbede, map[uint8][]byte{1: {0xaa}, 2: {1, 2, 3}, 3: {0x12, 0x34}})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = TransportSeq(pkt, 3)
	}
}

func TestParseFeedbackZeroAlloc(t *testing.T) {
	var r Recorder
	for i := range 200 {
		if i%9 != 4 {
			r.Record(uint16(i), int64(i)*700*us)
		}
	}
	dst := make([]byte, 1200)
	n, _ := r.BuildFeedback(dst, 1, 2, 0)
	got := make([]Arrival, 256)
	if a := testing.AllocsPerRun(1000, func() { _, _ = ParseFeedback(dst[12:n], got) }); a != 0 {
		t.Errorf("ParseFeedback: %v allocs/op", a)
	}
}
