package srtpx

import (
	"math/rand/v2"
	"testing"
)

func TestZeroAlloc(t *testing.T) {
	for _, pr := range profiles {
		t.Run("profile="+pr.name, func(t *testing.T) {
			s, _, _ := pair(t, pr.p, rand.New(rand.NewPCG(8, 8)))
			plain := pkt{ssrc: 1, csrcs: 2, ext: 1, payload: 1172}.marshal(t, rand.New(rand.NewPCG(8, 9)))
			buf := make([]byte, len(plain), len(plain)+s.Overhead())
			var r ROC
			seq := uint16(65000)
			if a := testing.AllocsPerRun(1000, func() {
				copy(buf, plain)
				seq++
				buf[2], buf[3] = byte(seq>>8), byte(seq)
				if _, err := s.Protect(buf, len(plain), r.Next(seq)); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("Protect+ROC.Next: %v allocs per packet", a)
			}
		})
	}
	t.Run("ROC.Next", func(t *testing.T) {
		var r ROC
		seq := uint16(0)
		if a := testing.AllocsPerRun(1000, func() { seq += 300; r.Next(seq) }); a != 0 {
			t.Errorf("%v allocs", a)
		}
	})
}
