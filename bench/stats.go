package bench

import (
	"math/bits"
	"sync/atomic"
)

// streamStat is the receive accounting of one RTP stream (one SSRC) at one
// subscriber, in the manner of RFC 3550 §6.4.1 and appendix A.3/A.8:
// expected = extended highest sequence - base + 1, loss = expected - received,
// interarrival jitter in RTP clock units (scaled by 16, as in A.8).
type streamStat struct {
	ssrc     uint32
	used     bool
	clock    int64  // RTP clock rate of the stream
	maxExt   uint64 // extended highest sequence number received
	received uint64
	expected uint64
	gaps     uint64 // sequence jumps of more than one
	late     uint64 // out-of-order or duplicate packets
	jitterQ4 int64  // interarrival jitter × 16, RTP units
	transit  int64
}

// update accounts one packet; arrivalNs is the bench clock in nanoseconds.
func (s *streamStat) update(seq uint16, ts uint32, arrivalNs int64) {
	arrival := uint32(arrivalNs * s.clock / 1e9)
	transit := int64(int32(arrival - ts))
	if !s.used {
		s.used = true
		s.maxExt = 1<<32 | uint64(seq)
		s.received, s.expected = 1, 1
		s.transit = transit
		return
	}
	s.received++
	delta := int64(int16(seq - uint16(s.maxExt)))
	if delta <= 0 {
		s.late++
		return
	}
	if delta > 1 {
		s.gaps++
	}
	s.expected += uint64(delta)
	s.maxExt += uint64(delta)
	d := transit - s.transit
	s.transit = transit
	if d < 0 {
		d = -d
	}
	s.jitterQ4 += d - ((s.jitterQ4 + 8) >> 4)
}

// jitterMs returns the interarrival jitter in milliseconds.
func (s *streamStat) jitterMs() float64 {
	if s.clock == 0 {
		return 0
	}
	return float64(s.jitterQ4) / 16 / float64(s.clock) * 1000
}

// histBuckets covers 1 µs .. 2^40 µs with 8 sub-buckets per power of two
// (about 9 % resolution), enough for latencies and connect times.
const histSub = 8
const histBuckets = 41 * histSub

// hist is a log-linear histogram of microsecond values, safe for one writer
// and concurrent readers; it never allocates.
type hist struct {
	b [histBuckets]atomic.Uint64
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	m := (us >> (e - 3)) & (histSub - 1)
	i := (e-2)*histSub + int(m)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue returns the midpoint of bucket i in µs.
func histValue(i int) float64 {
	if i < histSub {
		return float64(i)
	}
	e := i/histSub + 2
	m := i % histSub
	lo := float64(uint64(1)<<e) * (1 + float64(m)/histSub)
	return lo * (1 + 0.5/(histSub+float64(m)))
}

func (h *hist) add(us uint64) { h.b[histIndex(us)].Add(1) }

// snapshot copies the counts.
func (h *hist) snapshot() []uint64 {
	out := make([]uint64, histBuckets)
	for i := range h.b {
		out[i] = h.b[i].Load()
	}
	return out
}

// histQuantile returns the q-quantile (0..1) in µs of counts, or -1 if empty.
func histQuantile(counts []uint64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return -1
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return histValue(i)
		}
	}
	return histValue(len(counts) - 1)
}

// histDiff returns b - a element-wise.
func histDiff(a, b []uint64) []uint64 {
	out := make([]uint64, len(b))
	for i := range b {
		out[i] = b[i] - a[i]
	}
	return out
}
