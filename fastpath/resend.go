package fastpath

import (
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// NACK resends to a player are guarded twice (issue 15: a player whose
// socket buffer overflowed NACKed thousands of packets, and unpaced
// resends overflowed it again):
//   - a packet resent to the player less than one RTT ago (its RR's RTT,
//     at least resendGap) is not resent again: the first copy is still on
//     its way, and the repeated NACK is the player's own retry timer;
//   - the resends share a per-player token bucket filled at
//     resendRateFactor times the rate Fanout sends the player (measured
//     every rateWindow), so resends never much outrun the stream itself.
//     A resend over budget is dropped and counted; the player NACKs it
//     again after an RTT, by which time the bucket has refilled. A player
//     with a bandwidth estimate (playerbwe.go) gets at most half of it.
//
// Both are the player's core's, which sends the resends. For a player of
// another core than its publisher's, whose NACKs cross to the publisher's
// core and the history packets back, screenNACK applies them before the
// crossing too (the duplicate check, and the budget at twice the player's
// mean packet size), and the publisher's core keeps half the ring free
// (player.go onRemoteNACK), so a NACK storm does not crowd out the live
// fan-out that shares the ring.

const (
	resendGap        = 50 * time.Millisecond // the RTT floor of the duplicate check
	resendSlots      = 256                   // recent resends remembered per player and kind
	resendRateFactor = 4
	minResendRate    = 64 << 10 // bytes/s: a budget before the first measurement, and its floor
	resendBurst      = 200 * time.Millisecond
	minResendBurst   = 48 << 10 // bytes: a whole lost frame fits
	rateWindow       = time.Second
)

// resendLog remembers the publisher sequence numbers recently resent to a
// player, by seq modulo resendSlots (an older entry is simply overwritten).
type resendLog struct {
	seq [route.NumKinds][resendSlots]uint16
	at  [route.NumKinds][resendSlots]int64
}

// resendBudget is a player's resend token bucket and the send rate it
// follows; its zero value is a budget of minResendRate, empty.
type resendBudget struct {
	tokens, tokAt     int64 // bytes, and when they were last refilled
	rate              int64 // bytes/s sent to the player over the last window
	rateAt            int64
	rateOctets        uint64
	suppressed, paced uint64
}

// allowResend reports whether packet seq of kind (n bytes) may be resent
// to player st now, and records it when it may. A forced resend (a packet
// of the keyframe a layer switch waits on, layers.go) skips the budget
// but not the duplicate check.
func (c *core) allowResend(st *sessState, kind route.Kind, seq uint16, n int, force bool) bool {
	q := &st.pq
	if q.resent == nil {
		q.resent = new(resendLog) // once per player: its first NACK
	}
	i := seq % resendSlots
	gap := max(q.rtt, int64(resendGap))
	if at := q.resent.at[kind][i]; at != 0 && q.resent.seq[kind][i] == seq && c.now-at < gap {
		q.budget.suppressed++
		c.cnt.resendSuppressed.Add(1)
		return false
	}
	b := &q.budget
	c.refillResend(q)
	if force {
		c.cnt.resendForced.Add(1)
	} else if b.tokens < int64(n) {
		b.paced++
		c.cnt.resendPaced.Add(1)
		return false
	}
	b.tokens = max(b.tokens-int64(n), 0)
	q.resent.seq[kind][i], q.resent.at[kind][i] = seq, c.now
	return true
}

// refillResend brings player q's resend tokens up to now and returns them.
func (c *core) refillResend(q *playerQ) int64 {
	b := &q.budget
	rate := max(resendRateFactor*b.rate, minResendRate)
	burst := max(rate*int64(resendBurst)/int64(time.Second), minResendBurst)
	rate, burst = q.resendCap(rate, burst) // within its bandwidth estimate (playerbwe.go)
	if b.tokAt == 0 {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+rate*(c.now-b.tokAt)/int64(time.Second))
	}
	b.tokAt = c.now
	return b.tokens
}

// screenNACK drops from seqs, publisher sequence numbers of kind that a
// player of this core asks for from another core's publisher, those
// allowResend would refuse when they come back: resent within one RTT, and
// beyond twice what its budget pays at its mean packet size (the sizes are
// the publisher's core's to know). The budget is not cut while a layer
// switch waits on its keyframe, whose resends skip it (forced). Both are
// counted like allowResend's refusals.
func (c *core) screenNACK(st *sessState, kind route.Kind, seqs []uint16) []uint16 {
	q := &st.pq
	out := seqs[:0]
	for _, seq := range seqs {
		i := seq % resendSlots
		if q.resent != nil && q.resent.seq[kind][i] == seq && q.resent.at[kind][i] != 0 &&
			c.now-q.resent.at[kind][i] < max(q.rtt, int64(resendGap)) {
			q.budget.suppressed++
			c.cnt.resendSuppressed.Add(1)
			continue
		}
		out = append(out, seq)
	}
	if kind == route.KindVideo && st.lay.keyAt != 0 && c.now-st.lay.keyAt < int64(switchKeyWindow) {
		return out
	}
	size := int64(1200)
	if ot := &st.out[kind]; ot.packets > 0 {
		size = max(int64(ot.octets/ot.packets)+12, 100)
	}
	if allow := int(2*c.refillResend(q)/size) + 1; len(out) > allow {
		cut := uint64(len(out) - allow)
		q.budget.paced += cut
		c.cnt.resendPaced.Add(cut)
		out = out[:allow]
	}
	return out
}

// measureRate updates the rate a player's resend budget follows, once per
// rateWindow (tickPlayer).
func (c *core) measureRate(st *sessState) {
	b := &st.pq.budget
	if c.now-b.rateAt < int64(rateWindow) {
		return
	}
	var octets uint64
	for k := range st.out {
		octets += st.out[k].octets
	}
	if b.rateAt != 0 {
		b.rate = int64(octets-b.rateOctets) * int64(time.Second) / (c.now - b.rateAt)
	}
	b.rateAt, b.rateOctets = c.now, octets
}
