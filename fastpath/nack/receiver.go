// Package nack implements RTP loss repair for the fastpath: the receiver
// side that detects gaps in a publisher's stream and schedules generic NACKs
// (RFC 4585 §6.2.1), the NACK packet builder and FCI parser, and the sender
// side that keeps a per-track packet history to answer players' NACKs by
// plain resend on the player's SSRC (Fanout negotiates no RTX, RFC 4588).
//
// It may be imported by fastpath and its sub-packages; it imports only the
// standard library. Nothing here is safe for concurrent use: every Receiver
// and History is owned by the one core that owns its stream, which passes the
// clock in (int64 nanoseconds on any monotonic base) instead of reading it.
// No method allocates after construction.
package nack

import "time"

// Receiver tuning. The values follow SRS (notes/srs-reference.md §4.2) and
// libwebrtc's NackRequester where SRS has no opinion.
const (
	// MaxMissing bounds the list of missing sequence numbers. A gap that
	// does not fit resets the list, as SRS does (it caps at 2/3 of its ring).
	MaxMissing = 512
	// FirstDelay is the reorder tolerance: a hole is first NACKed when it is
	// this old (SRS: 10 ms), so mere reordering costs no request.
	FirstDelay = int64(10 * time.Millisecond)
	// MinRetry and MaxRetry clamp the retry interval (SRS: at least 20 ms,
	// RTT-derived value capped at 500 ms).
	MinRetry = int64(20 * time.Millisecond)
	MaxRetry = int64(500 * time.Millisecond)
	// DefaultRTT is assumed while no RTT is known (SRS starts at 50 ms).
	DefaultRTT = int64(50 * time.Millisecond)
	// MaxTries and GiveUpAfter bound the effort per hole (SRS: 15 / 1 s).
	MaxTries    = 15
	GiveUpAfter = int64(time.Second)
	// maxDropout and maxMisorder are RFC 3550 Appendix A.1's MAX_DROPOUT and
	// MAX_MISORDER: larger jumps need a second, sequential packet to be
	// believed (a publisher restarted its sequence).
	maxDropout  = 3000
	maxMisorder = 100
)

// PushResult says what a pushed sequence number meant.
type PushResult uint8

// Push results.
const (
	PushFirst     PushResult = iota // the first packet: tracking starts here
	PushInOrder                     // advanced the highest seq (holes before it are now missing)
	PushRecovered                   // filled a hole that was being NACKed
	PushOld                         // duplicate, late but untracked, or a jump awaiting confirmation
	PushReset                       // the missing list was reset (gap too big or seq resync); ask for a keyframe
)

// ReceiverStats are a Receiver's counters. Requested counts sequence numbers
// placed in NACKs (each retry counts again); the caller counts packets.
type ReceiverStats struct {
	Lost, Recovered, Requested, GivenUp, Resets uint64
}

type hole struct {
	ext      int64 // extended sequence number
	detected int64 // when the gap was seen
	sent     int64 // when it was last requested
	tries    uint8
	live     bool // false once recovered (a tombstone until the next Collect)
}

// Receiver tracks one publisher SSRC's sequence numbers and decides which
// to NACK. The zero value is ready to use.
type Receiver struct {
	Stats    ReceiverStats
	started  bool
	keyframe bool
	highest  int64 // extended highest sequence number seen
	badSeq   int64 // RFC 3550 A.1 bad_seq: next seq that would confirm a jump, or -1
	head, n  int   // ring of holes, ascending by ext
	holes    [MaxMissing]hole
}

// Reset forgets all state (a new publisher on the stream) but keeps Stats.
func (r *Receiver) Reset() {
	r.started, r.keyframe, r.head, r.n = false, false, 0, 0
}

// Highest returns the extended highest sequence number (cycles<<16 | seq).
func (r *Receiver) Highest() int64 { return r.highest }

// Missing returns how many holes are being tracked.
func (r *Receiver) Missing() int {
	live := 0
	for i := 0; i < r.n; i++ {
		if r.holes[(r.head+i)&(MaxMissing-1)].live {
			live++
		}
	}
	return live
}

// TakeKeyframeRequest reports, once, that repair failed (a hole was given up
// or the list was reset) so the caller can ask the publisher for a keyframe
// instead of letting every player discover the broken frame and send a PLI.
func (r *Receiver) TakeKeyframeRequest() bool {
	k := r.keyframe
	r.keyframe = false
	return k
}

// Push records the arrival of seq at now.
func (r *Receiver) Push(seq uint16, now int64) PushResult {
	if !r.started {
		r.started, r.highest, r.badSeq, r.head, r.n = true, int64(seq), -1, 0, 0
		return PushFirst
	}
	udelta := seq - uint16(r.highest)
	ext := r.highest + int64(int16(udelta))
	if int16(udelta) < 0 && r.recover(ext) {
		r.Stats.Recovered++
		return PushRecovered
	}
	switch {
	case udelta == 0:
		return PushOld
	case udelta < maxDropout: // RFC 3550 A.1: in order, with permissible gap
		r.badSeq = -1
		res := PushInOrder
		if gap := int64(udelta) - 1; gap > 0 && !r.addHoles(r.highest+1, int(gap), now) {
			res = PushReset
		}
		r.highest += int64(udelta)
		return res
	case udelta <= 65535-maxMisorder: // RFC 3550 A.1: a very large jump
		if int64(seq) != r.badSeq {
			r.badSeq = int64(seq + 1)
			return PushOld
		}
		// Two sequential packets: the source restarted; resync.
		r.started, r.highest, r.badSeq, r.head, r.n = true, int64(seq), -1, 0, 0
		r.Stats.Resets++
		r.keyframe = true
		return PushReset
	default: // duplicate or reordered, not a hole we track
		return PushOld
	}
}

// addHoles appends count holes starting at ext. When they do not fit the
// list is cleared instead (SRS's policy) and false is returned.
func (r *Receiver) addHoles(ext int64, count int, now int64) bool {
	if r.n+count > MaxMissing {
		r.compact()
	}
	if r.n+count > MaxMissing {
		r.head, r.n = 0, 0
		r.Stats.Resets++
		r.keyframe = true
		return false
	}
	for i := 0; i < count; i++ {
		r.holes[(r.head+r.n)&(MaxMissing-1)] = hole{ext: ext + int64(i), detected: now, live: true}
		r.n++
	}
	r.Stats.Lost += uint64(count)
	return true
}

// recover marks the hole ext as filled; holes are sorted, so it is a binary
// search over the ring.
func (r *Receiver) recover(ext int64) bool {
	lo, hi := 0, r.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.holes[(r.head+mid)&(MaxMissing-1)].ext < ext {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == r.n {
		return false
	}
	h := &r.holes[(r.head+lo)&(MaxMissing-1)]
	if h.ext != ext || !h.live {
		return false
	}
	h.live = false
	for r.n > 0 && !r.holes[r.head].live { // pop tombstones at the head
		r.head = (r.head + 1) & (MaxMissing - 1)
		r.n--
	}
	return true
}

// compact drops tombstones, keeping order.
func (r *Receiver) compact() {
	w := 0
	for i := 0; i < r.n; i++ {
		h := r.holes[(r.head+i)&(MaxMissing-1)]
		if h.live {
			r.holes[(r.head+w)&(MaxMissing-1)] = h
			w++
		}
	}
	r.n = w
}

// RetryInterval is how long to wait before asking again for a hole already
// requested: 1.5 × RTT (one RTT for the retransmission to arrive plus half
// for jitter and the sender's pacing), DefaultRTT while RTT is unknown
// (rtt <= 0), clamped to [MinRetry, MaxRetry].
func RetryInterval(rtt int64) int64 {
	if rtt <= 0 {
		rtt = DefaultRTT
	}
	return min(max(rtt+rtt/2, MinRetry), MaxRetry)
}

// Collect appends to dst (up to cap(dst), so it never allocates) the
// sequence numbers due for a NACK at now, oldest first, and gives up holes
// that are older than GiveUpAfter or were requested MaxTries times. rtt is
// the current round-trip estimate in ns (0 when unknown). Call it every
// 10–20 ms; holes that did not fit in dst stay due for the next call.
func (r *Receiver) Collect(now, rtt int64, dst []uint16) []uint16 {
	interval := RetryInterval(rtt)
	w := 0
	for i := 0; i < r.n; i++ {
		h := r.holes[(r.head+i)&(MaxMissing-1)]
		if !h.live {
			continue
		}
		if now-h.detected >= GiveUpAfter || (h.tries >= MaxTries && now-h.sent >= interval) {
			r.Stats.GivenUp++
			r.keyframe = true
			continue
		}
		due := (h.tries == 0 && now-h.detected >= FirstDelay) || (h.tries > 0 && now-h.sent >= interval)
		if due && len(dst) < cap(dst) {
			dst = append(dst, uint16(h.ext))
			h.tries++
			h.sent = now
			r.Stats.Requested++
		}
		r.holes[(r.head+w)&(MaxMissing-1)] = h
		w++
	}
	r.n = w
	return dst
}
