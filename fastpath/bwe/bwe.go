// Package bwe estimates the bandwidth towards one player from its
// transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01): Fanout stamps every
// packet it sends the player with the next transport sequence number
// (Stamp, remembering the send time and size in a ring), the player
// reports when each arrived (fastpath/twcc.ParseFeedback), and OnFeedback
// runs a compact version of Google Congestion Control
// (draft-ietf-rmcat-gcc-02): a delay-based detector (send-burst groups,
// §5.2; a trendline of the accumulated one-way delay variation with an
// adaptive threshold, as libwebrtc's TrendlineEstimator does), a loss-based
// controller (§6: more than 10 % lost cuts the rate by half the loss), and
// an AIMD rate (§5.5: overuse sets 0.85 × the rate the player acknowledged;
// normal use grows it multiplicatively, capped by what the caller may want
// to probe). fastpath's layer choice reads Estimate.
//
// Why not pion/interceptor's gcc: it is an interceptor on a pion
// PeerConnection's RTP writer (it wants rtp.Header values, interceptor
// attributes and its own goroutines and timers), keeps its history in maps
// and slices that allocate per packet and per feedback, and reads the wall
// clock itself; fastpath runs one loop per core with no goroutine per
// session, a clock read once per batch, and zero allocations per packet
// (AllocsPerRun), and depguard keeps pion/interceptor out of it.
//
// It may be imported by fastpath and its sub-packages; it imports the
// standard library and fastpath/twcc. An Estimator is owned by one core and
// is not safe for concurrent use; times are int64 nanoseconds on the
// caller's monotonic clock, passed in. Nothing allocates after New.
package bwe

import (
	"math"
	"time"

	"github.com/fanout/fanout/fastpath/twcc"
)

const (
	// RingSize is how many sent packets are remembered for their feedback:
	// 1024 is a second at 8 Mbps of 1000-byte packets, ten feedback
	// intervals of the browsers' 100 ms.
	RingSize = 1024

	burstTime = 5 * time.Millisecond // §5.2: packets sent within 5 ms are one group
	window    = 20                   // trendline window (libwebrtc's default)
	smoothing = 0.9                  // of the accumulated delay
	gain      = 4.0                  // threshold gain of the modified trend
	overuseMs = 10.0                 // time over the threshold before overuse

	// MinRate and MaxRate bound the estimate (bps).
	MinRate = 30_000
	MaxRate = 50_000_000
	// startRate is the estimate before any feedback: a player starts on the
	// layer it asked for, and the acknowledged rate lifts the estimate to
	// what it receives until congestion says otherwise.
	startRate = 300_000

	// beta is the multiplicative decrease on overuse (§5.5).
	beta = 0.85
	// growth is the multiplicative increase per second in normal use. GCC
	// uses 8 %/s; a layer switch is a step of 2–4×, so at 8 %/s a player
	// would wait 10–20 s for the next layer. 20 %/s moves it in 4–6 s;
	// failed steps are damped by the caller's back-off instead.
	growth = 1.20
	// holdAfterDecrease keeps the rate still after a decrease, while the
	// queue that caused it drains.
	holdAfterDecrease = time.Second
	// decreaseGap is the least time between two decreases (about an RTT
	// plus a feedback interval), so one congestion event cuts once.
	decreaseGap = 300 * time.Millisecond
	// ackedWindow is the period of the acknowledged-rate measurement.
	ackedWindow = 250 * time.Millisecond
	// lossHigh and lossLow are the loss-based controller's bounds (§6).
	lossHigh = 0.10
	lossLow  = 0.02
)

// Usage is the delay-based detector's state (§5.4).
type Usage int8

// The detector's states.
const (
	Normal Usage = iota
	Overuse
	Underuse
)

type sent struct {
	at   int64
	seq  uint16
	size uint16
}

type group struct {
	firstSend, lastSend, lastArrival int64
	ok                               bool
}

// Stats are an Estimator's counters.
type Stats struct {
	Stamped, Feedbacks, Acked, Lost, Unknown uint64
	Overuses, Decreases                      uint64
}

// Estimator is one player's bandwidth estimate.
type Estimator struct {
	Stats Stats
	next  uint16
	ring  [RingSize]sent
	// delay-based detector
	cur, prev     group
	firstArrival  int64
	acc, smooth   float64
	hx, hy        [window]float64
	hn, hi        int
	deltas        int
	threshold     float64
	lastThreshold int64
	overuseTime   float64
	overuseCount  int
	prevTrend     float64
	usage         Usage
	// rate
	rate, acked, lastInst float64 // lastInst: the last window's acknowledged rate
	ackedBytes            int64
	ackedAt, lastFeedback int64
	lastDecrease          int64
	fbLost, fbTotal       int
	loss                  float64
	// Ceiling is how far above the acknowledged rate the estimate may grow
	// (bps): the caller's next layer, so that reaching it is a reason to
	// try that layer. 0 = 1.5 × acknowledged (GCC's app-limited cap).
	Ceiling float64
	scratch [256]twcc.Arrival
}

// New returns an estimator at its start rate.
func New() *Estimator {
	return &Estimator{rate: startRate, threshold: 12.5}
}

// Next is the transport sequence number the next Stamp assigns.
func (e *Estimator) Next() uint16 { return e.next }

// Stamp assigns the next transport sequence number to a packet of size
// bytes sent at now and remembers it for the feedback.
func (e *Estimator) Stamp(size int, now int64) uint16 {
	seq := e.next
	e.next++
	e.ring[seq%RingSize] = sent{at: now, seq: seq, size: uint16(min(size, math.MaxUint16))}
	e.Stats.Stamped++
	return seq
}

// Estimate is the current bandwidth estimate in bps.
func (e *Estimator) Estimate() float64 { return e.rate }

// Acked is the rate the player acknowledged lately, in bps.
func (e *Estimator) Acked() float64 { return e.acked }

// Loss is the share of packets lost in the last feedbacks (0–1).
func (e *Estimator) Loss() float64 { return e.loss }

// Usage is the delay-based detector's last state.
func (e *Estimator) Usage() Usage { return e.usage }

// LastDecrease is when the estimate was last cut (0 = never).
func (e *Estimator) LastDecrease() int64 { return e.lastDecrease }

// OnFeedback takes the FCI of a transport-wide feedback received at now and
// updates the estimate; false when the FCI is malformed.
func (e *Estimator) OnFeedback(fci []byte, now int64) bool {
	n, ok := twcc.ParseFeedback(fci, e.scratch[:])
	if !ok {
		return false
	}
	e.Stats.Feedbacks++
	for _, a := range e.scratch[:n] {
		s := &e.ring[a.Seq%RingSize]
		if s.seq != a.Seq || s.size == 0 {
			e.Stats.Unknown++
			continue
		}
		e.fbTotal++
		if !a.Received {
			e.fbLost++
			e.Stats.Lost++
			continue
		}
		e.Stats.Acked++
		e.ackedBytes += int64(s.size)
		e.onArrival(s.at, a.At)
		s.size = 0 // reported: a later duplicate report is ignored
	}
	e.measure(now)
	e.control(now)
	return true
}

// measure updates the acknowledged rate and the loss share.
func (e *Estimator) measure(now int64) {
	if e.ackedAt == 0 {
		e.ackedAt = now
		return
	}
	if dt := now - e.ackedAt; dt >= int64(ackedWindow) {
		inst := float64(e.ackedBytes) * 8 * float64(time.Second) / float64(dt)
		e.lastInst = inst
		if e.acked == 0 {
			e.acked = inst
		} else {
			e.acked = 0.5*e.acked + 0.5*inst
		}
		e.ackedBytes, e.ackedAt = 0, now
	}
	if e.fbTotal >= 20 {
		e.loss = float64(e.fbLost) / float64(e.fbTotal)
		e.fbLost, e.fbTotal = 0, 0
	}
}

// control moves the rate (§5.5, §6).
func (e *Estimator) control(now int64) {
	dt := 0.0
	if e.lastFeedback != 0 {
		dt = float64(now-e.lastFeedback) / float64(time.Second)
	}
	e.lastFeedback = now
	canCut := e.lastDecrease == 0 || now-e.lastDecrease >= int64(decreaseGap)
	switch {
	case e.usage == Overuse && canCut:
		// The smoothed rate lags a queue that just filled: the last
		// window's is what the bottleneck lets through now.
		e.decrease(beta*min(e.acked, max(e.lastInst, MinRate)), now)
	case e.loss > lossHigh && canCut:
		e.decrease((1-0.5*e.loss)*min(e.acked, e.rate), now)
		e.loss = 0 // judge the next window on its own
	case e.usage == Normal && e.loss < lossLow:
		// What the player receives without congestion, the link carries.
		e.rate = max(e.rate, e.acked)
		if e.lastDecrease == 0 || now-e.lastDecrease >= int64(holdAfterDecrease) {
			capRate := max(1.5*e.acked+10_000, e.Ceiling)
			if e.rate < capRate {
				e.rate = min(e.rate*math.Pow(growth, min(dt, 1)), capRate)
			}
		}
	}
	e.rate = min(max(e.rate, MinRate), MaxRate)
}

func (e *Estimator) decrease(to float64, now int64) {
	if to <= 0 {
		to = beta * e.rate
	}
	if to < e.rate {
		e.rate = to
	}
	e.lastDecrease = now
	e.Stats.Decreases++
}
