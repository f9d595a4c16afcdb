package srtpx

import (
	"math/rand/v2"
	"testing"
)

func TestROC(t *testing.T) {
	for _, c := range []struct {
		name string
		seqs []uint16
		want []uint32
	}{
		{"first packet starts at 0", []uint16{65535}, []uint32{0}},
		{"in order", []uint16{1, 2, 3}, []uint32{0, 0, 0}},
		{"wrap", []uint16{65534, 65535, 0, 1}, []uint32{0, 0, 1, 1}},
		{"wrap with a gap", []uint16{65000, 300}, []uint32{0, 1}},
		{"retransmission before the wrap", []uint16{65534, 65535, 0, 1, 65535, 65534, 2}, []uint32{0, 0, 1, 1, 0, 0, 1}},
		{"retransmission after the wrap", []uint16{65535, 0, 5, 0, 5}, []uint32{0, 1, 1, 1, 1}},
		{"repeat of the highest", []uint16{9, 9}, []uint32{0, 0}},
		{"old packet never below 0", []uint16{10, 65000, 11}, []uint32{0, 0, 0}},
		{"forward by 32767 wraps", []uint16{40000, 7231}, []uint32{0, 1}},
		{"second wrap", []uint16{65535, 0, 32000, 64000, 1000, 63000}, []uint32{0, 1, 1, 1, 2, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r ROC
			for i, seq := range c.seqs {
				if got := r.Next(seq); got != c.want[i] {
					t.Fatalf("packet %d (seq %d): ROC %d, want %d", i, seq, got, c.want[i])
				}
			}
		})
	}
}

// rfcEstimate is the receiver's ROC estimate of RFC 3711 Appendix A, given
// the highest index it has seen (roc, sl).
func rfcEstimate(roc uint32, sl, seq uint16) uint32 {
	if sl < 32768 {
		if int(seq)-int(sl) > 32768 {
			return roc - 1
		}
		return roc
	}
	if int(sl)-32768 > int(seq) {
		return roc + 1
	}
	return roc
}

// TestROCWalk sends a long random sequence: forward steps of up to 32767
// and retransmissions of earlier packets up to 32767 behind the highest.
// Every number must get the ROC of its true index (a retransmission gets
// the ROC it was first sent with), which is also what a receiver following
// RFC 3711 Appendix A estimates.
func TestROCWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for run := range 20 {
		var r ROC
		start := rng.Uint64N(1 << 16)
		sent := []uint64{start}
		highest := start
		rr, rsl := uint32(0), uint16(start)
		if got := r.Next(uint16(start)); got != 0 {
			t.Fatalf("run %d: first ROC %d", run, got)
		}
		for i := range 20000 {
			var idx uint64
			switch k := rng.IntN(10); {
			case k < 3 && len(sent) > 1: // retransmission
				idx = sent[len(sent)-1-rng.IntN(min(len(sent)-1, 300))]
				if highest-idx > 32767 {
					continue
				}
			case k < 4:
				idx = highest + 1 + rng.Uint64N(32767)
			default:
				idx = highest + 1 + rng.Uint64N(50)
			}
			seq := uint16(idx)
			if est := rfcEstimate(rr, rsl, seq); uint64(est)<<16|uint64(seq) != idx {
				t.Fatalf("run %d step %d: test bug: RFC estimate %d for index %#x", run, i, est, idx)
			}
			if got := r.Next(seq); got != uint32(idx>>16) {
				t.Fatalf("run %d step %d: seq %d: ROC %d, want %d (highest %#x)", run, i, seq, got, idx>>16, highest)
			}
			if idx > highest {
				highest, rr, rsl = idx, uint32(idx>>16), seq
				sent = append(sent, idx)
			}
		}
	}
}
