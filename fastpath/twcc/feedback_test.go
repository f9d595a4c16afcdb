package twcc

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/rtcp"
)

// TestParseFeedback: feedback built by the Recorder, and by pion/rtcp from
// the same arrivals, parses back to every packet's status and arrival time
// (rounded to the 250 µs ticks of the format).
func TestParseFeedback(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	for _, lossPct := range []int{0, 3, 40} {
		var r Recorder
		truth := map[uint16]int64{}
		at := int64(5e9)
		for seq := uint16(65000); seq != 300; seq++ { // wraps
			at += int64(rng.IntN(3000)) * us
			if rng.IntN(100) < lossPct {
				continue
			}
			r.Record(seq, at)
			truth[seq] = at
		}
		dst, got := make([]byte, 1200), make([]Arrival, 4096)
		checked := 0
		for r.Pending() {
			n, ok := r.BuildFeedback(dst, 1, 2, 0)
			if !ok {
				t.Fatal("no feedback")
			}
			var pfb rtcp.TransportLayerCC
			if err := pfb.Unmarshal(dst[:n]); err != nil {
				t.Fatal(err)
			}
			pionBytes, err := pfb.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			for _, pkt := range [][]byte{dst[:n], pionBytes} {
				m, ok := ParseFeedback(pkt[12:], got)
				if !ok || m != int(pfb.PacketStatusCount) {
					t.Fatalf("loss %d%%: parsed %d of %d (ok %v)", lossPct, m, pfb.PacketStatusCount, ok)
				}
				for _, a := range got[:m] {
					want, rcv := truth[a.Seq]
					if a.Received != rcv {
						t.Fatalf("seq %d: received %v, want %v", a.Seq, a.Received, rcv)
					}
					if rcv && (a.At > want || want-a.At >= deltaTick) {
						t.Fatalf("seq %d: at %d, want %d (within a tick)", a.Seq, a.At, want)
					}
					checked++
				}
			}
		}
		if checked < 2*len(truth) {
			t.Errorf("loss %d%%: checked %d statuses for %d arrivals", lossPct, checked, len(truth))
		}
	}
}

func TestParseFeedbackMalformed(t *testing.T) {
	got := make([]Arrival, 16)
	for name, fci := range map[string][]byte{
		"short":           {0, 1, 0},
		"chunks missing":  {0, 1, 0, 20, 0, 0, 1, 0, 0x20, 0x05},
		"deltas missing":  {0, 1, 0, 3, 0, 0, 1, 0, 0x20, 0x03, 1},
		"zero-length run": {0, 1, 0, 3, 0, 0, 1, 0, 0, 0, 0, 0},
	} {
		if _, ok := ParseFeedback(fci, got); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// A feedback longer than dst is cut, not overrun.
	fci := []byte{0, 1, 0, 20, 0, 0, 1, 0, 0x20, 20}
	for range 20 {
		fci = append(fci, 4)
	}
	if n, ok := ParseFeedback(fci, got); !ok || n != len(got) {
		t.Errorf("long feedback: %d, %v", n, ok)
	}
}
