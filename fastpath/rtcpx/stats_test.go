package rtcpx

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestReceiveStatsLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seqs     []uint16
		ext      uint32
		lost     int32
		fraction uint8
	}{
		{"clean", []uint16{1, 2, 3, 4}, 4, 0, 0},
		{"one of four lost", []uint16{1, 2, 4}, 4, 1, 64},
		{"half lost", []uint16{10, 12, 14, 16, 18}, 18, 4, 113}, // 4/9 × 256
		{"wrap", []uint16{65534, 65535, 0, 2}, 65536 + 2, 1, 51},
		{"duplicate makes negative loss", []uint16{1, 2, 2, 3}, 3, -1, 0},
		{"reordered", []uint16{1, 3, 2, 4}, 4, 0, 0},
		{"big jump ignored", []uint16{1, 2, 30000, 3}, 3, 0, 0},
		{"big jump confirmed resyncs", []uint16{1, 2, 30000, 30001, 30002}, 30002, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s ReceiveStats
			s.Init(42, 90000)
			for i, q := range tc.seqs {
				s.Update(q, uint32(i)*3000, int64(i)*33*ms)
			}
			rb := s.Report(0)
			if rb.SSRC != 42 || rb.ExtHighestSeq != tc.ext || rb.TotalLost != tc.lost || rb.FractionLost != tc.fraction {
				t.Errorf("report %+v", rb)
			}
		})
	}
}

func TestReceiveStatsFractionPerInterval(t *testing.T) {
	var s ReceiveStats
	s.Init(1, 48000)
	seq := uint16(100)
	for i := range 100 { // interval 1: 10 % loss
		if i%10 != 5 {
			s.Update(seq, 0, 0)
		}
		seq++
	}
	s.Update(seq, 0, 0)
	seq++
	if rb := s.Report(0); rb.FractionLost != 25 || rb.TotalLost != 10 { // 10/101*256
		t.Fatalf("interval 1: %+v", rb)
	}
	for range 50 { // interval 2: clean
		s.Update(seq, 0, 0)
		seq++
	}
	if rb := s.Report(0); rb.FractionLost != 0 || rb.TotalLost != 10 {
		t.Fatalf("interval 2: %+v", rb)
	}
	// a late retransmission of a lost packet reduces cumulative loss
	s.Update(105, 0, 0)
	if rb := s.Report(0); rb.TotalLost != 9 || rb.FractionLost != 0 {
		t.Fatalf("after recovery: %+v", rb)
	}
}

// TestJitter compares against a float implementation of RFC 3550 §6.4.1.
func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clock   uint32
		noiseMS float64
	}{
		{"video steady", 90000, 0},
		{"video 5ms noise", 90000, 5},
		{"audio 20ms noise", 48000, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			var s ReceiveStats
			s.Init(1, tc.clock)
			var j, lastTransit float64
			for i := range 2000 {
				sendMS := float64(i) * 20
				arrMS := sendMS + 50 + rng.Float64()*tc.noiseMS
				ts := uint32(int64(4_294_000_000) + int64(sendMS*float64(tc.clock)/1000)) // wraps during the run
				s.Update(uint16(i), ts, int64(arrMS*1e6))
				transit := arrMS*float64(tc.clock)/1000 - sendMS*float64(tc.clock)/1000
				if i > 0 {
					j += (math.Abs(transit-lastTransit) - j) / 16
				}
				lastTransit = transit
			}
			if got := float64(s.Jitter()); math.Abs(got-j) > 2+j/50 {
				t.Errorf("jitter %v want %.1f", got, j)
			}
		})
	}
}

func TestLSRDLSR(t *testing.T) {
	var s ReceiveStats
	s.Init(1, 90000)
	s.Update(1, 0, 0)
	if rb := s.Report(0); rb.LSR != 0 || rb.DLSR != 0 {
		t.Fatalf("LSR without SR: %+v", rb)
	}
	ntp := uint64(0xaabbccdd_11223344)
	s.OnSR(ntp, 5, 1000*ms)
	rb := s.Report(1500 * ms)
	if rb.LSR != 0xccdd1122 || rb.DLSR != 32768 {
		t.Fatalf("LSR/DLSR %+v", rb)
	}
	if src, ok := s.LastSR(); !ok || src.NTP != ntp || src.RTPTime != 5 || src.At != 1000*ms {
		t.Fatalf("LastSR %+v", src)
	}
}
