// Package twcc produces transport-wide congestion control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01) for publishers, so
// a browser's send-side bandwidth estimator (Chrome's GoogCC) sees every
// packet's arrival time and ramps its target bitrate up.
//
// A Recorder is fed the transport-wide sequence number of each RTP packet a
// publisher session receives (read with TransportSeq from the header
// extension id negotiated in SDP, RFC 8285) and its arrival time; every
// 50–100 ms the caller builds an RTPFB FMT=15 packet with BuildFeedback.
// The other way, ParseFeedback reads the feedback a player sends about the
// packets Fanout stamped for it (fastpath/bwe estimates its bandwidth).
//
// It may be imported by fastpath and its sub-packages; it imports only the
// standard library. A Recorder is owned by one core and is not safe for
// concurrent use; times are int64 nanoseconds on the caller's monotonic
// base (never negative), passed in. Nothing allocates after construction.
package twcc

import (
	"encoding/binary"
	"time"
)

const (
	// RingSize is how many transport sequence numbers a Recorder remembers:
	// 4096 packets is 100 ms at about 40 000 packets/s, far above one
	// publisher session's rate, so nothing is lost between two feedbacks.
	RingSize = 4096
	// Interval is the feedback period the caller should use (libwebrtc sends
	// every 50–100 ms depending on bitrate; SRS every 100 ms).
	Interval = int64(50 * time.Millisecond)

	deltaTick = int64(250 * time.Microsecond) // §3.1.5: receive deltas in 250 µs
	refTick   = int64(64 * time.Millisecond)  // §3.1: reference time in 64 ms
	fbHeader  = 20                            // RTCP header, 2 SSRCs, base, count, ref time, fb count

	symNotReceived = 0
	symSmallDelta  = 1
	symLargeDelta  = 2
)

// Stats are a Recorder's counters.
type Stats struct {
	Recorded, Duplicates, Late, TooOld, Feedbacks, Reported uint64
}

type arrival struct {
	ext int64 // extended transport seq stored in this slot
	at  int64 // arrival time, ns
}

// Recorder collects arrivals of one publisher session (TWCC sequence
// numbers are transport-wide: one Recorder per session, not per SSRC). The
// zero value is ready to use.
type Recorder struct {
	Stats   Stats
	started bool
	highest int64 // extended highest transport seq received
	start   int64 // first extended seq not yet reported
	slots   [RingSize]arrival
	// scratch for BuildFeedback
	syms   [RingSize]uint8
	deltas [RingSize]int16
}

// Reset forgets all arrivals (keeps Stats).
func (r *Recorder) Reset() { r.started = false }

// Pending reports whether BuildFeedback has something to send.
func (r *Recorder) Pending() bool { return r.started && r.start <= r.highest }

// Record notes that transport seq arrived at at (ns). Reordered packets are
// welcome; a packet older than what was already reported moves the next
// feedback's start back so it is reported as received after all (libwebrtc
// does the same), as long as it is still inside the ring.
func (r *Recorder) Record(seq uint16, at int64) {
	if !r.started {
		// Extended numbers start at 1<<32 so they stay positive and an
		// empty slot (ext 0) never matches.
		ext := int64(1)<<32 | int64(seq)
		r.started, r.highest, r.start = true, ext, ext
		clear(r.slots[:])
		r.slots[ext&(RingSize-1)] = arrival{ext: ext, at: at}
		r.Stats.Recorded++
		return
	}
	ext := r.highest + int64(int16(seq-uint16(r.highest)))
	if r.highest-ext >= RingSize {
		r.Stats.TooOld++
		return
	}
	s := &r.slots[ext&(RingSize-1)]
	if s.ext == ext {
		r.Stats.Duplicates++
		return
	}
	*s = arrival{ext: ext, at: at}
	r.Stats.Recorded++
	if ext > r.highest {
		r.highest = ext
		if r.start <= ext-RingSize { // the oldest unreported slots were overwritten
			r.start = ext - RingSize + 1
		}
	} else if ext < r.start {
		r.Stats.Late++
		r.start = ext
	}
}

func (r *Recorder) received(ext int64) (int64, bool) {
	s := r.slots[ext&(RingSize-1)]
	return s.at, s.ext == ext
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// BuildFeedback writes one transport-wide feedback packet (RTPFB, FMT=15,
// draft §3.1) into dst for the arrivals recorded since the last feedback and
// returns its length; ok is false when nothing is pending or dst is smaller
// than 24 bytes. fbCount is the caller's feedback packet counter (§3.1: it
// increments by one per packet, wrapping at 256). When everything does not
// fit in dst (or a receive delta exceeds ±8 s), the packet covers a prefix
// and Pending stays true: call again.
func (r *Recorder) BuildFeedback(dst []byte, senderSSRC, mediaSSRC uint32, fbCount uint8) (n int, ok bool) {
	if !r.Pending() || len(dst) < fbHeader+4 {
		return 0, false
	}
	count, refTime := r.plan(len(dst))
	chunks := r.writeChunks(dst[fbHeader:], count)
	off := fbHeader + chunks
	for i := 0; i < count; i++ {
		switch r.syms[i] {
		case symSmallDelta:
			dst[off] = uint8(r.deltas[i])
			off++
		case symLargeDelta:
			binary.BigEndian.PutUint16(dst[off:], uint16(r.deltas[i]))
			off += 2
		}
	}
	pad := (4 - off%4) % 4
	for i := 0; i < pad; i++ {
		dst[off+i] = 0
	}
	if pad > 0 { // RFC 3550 §6.4.1 padding: the last octet counts it
		dst[off+pad-1] = uint8(pad)
	}
	off += pad
	dst[0] = 0x80 | 15
	if pad > 0 {
		dst[0] |= 0x20
	}
	dst[1] = 205 // RTPFB, RFC 4585 §6.1
	binary.BigEndian.PutUint16(dst[2:], uint16(off/4-1))
	binary.BigEndian.PutUint32(dst[4:], senderSSRC)
	binary.BigEndian.PutUint32(dst[8:], mediaSSRC)
	binary.BigEndian.PutUint16(dst[12:], uint16(r.start))
	binary.BigEndian.PutUint16(dst[14:], uint16(count))
	binary.BigEndian.PutUint32(dst[16:], uint32(refTime)<<8|uint32(fbCount)) // 24-bit reference time
	r.start += int64(count)
	r.Stats.Feedbacks++
	r.Stats.Reported += uint64(count)
	return off, true
}

// plan fills syms/deltas for the packets from r.start on that fit in size
// bytes, and returns how many and the reference time (64 ms units, 24 bits).
func (r *Recorder) plan(size int) (count int, refTime int64) {
	deltaBytes := 0
	end := min(r.highest+1, r.start+RingSize, r.start+0xffff)
	var prev int64
	haveRef := false
	for ext := r.start; ext < end; ext++ {
		sym, d := uint8(symNotReceived), int64(0)
		if at, ok := r.received(ext); ok {
			ticks := floorDiv(at, deltaTick)
			if !haveRef { // §3.1: deltas of the first packet are from the reference time
				refTime = floorDiv(at, refTick)
				prev, haveRef = refTime*(refTick/deltaTick), true
			}
			d = ticks - prev
			switch {
			case d >= 0 && d <= 255:
				sym = symSmallDelta
			case d >= -32768 && d <= 32767:
				sym = symLargeDelta
			default: // §3.1.5: does not fit; the next feedback starts here
				return count, refTime & 0xffffff
			}
		}
		// worst case: every 7 statuses take a 2-byte chunk, plus padding
		need := fbHeader + 2*((count+1+6)/7) + deltaBytes + int(sym) + 3
		if need > size {
			break
		}
		if sym != symNotReceived {
			prev += d
		}
		r.syms[count], r.deltas[count] = sym, int16(d)
		deltaBytes += int(sym)
		count++
	}
	return count, refTime & 0xffffff
}

// writeChunks encodes syms[:count] as packet status chunks (§3.1.3,
// §3.1.4): a run-length chunk for runs of 14 or more (or a run to the
// end), else a 1-bit status vector of 14 when there is no large delta among
// them, else a 2-bit status vector of 7. It returns the bytes written.
func (r *Recorder) writeChunks(dst []byte, count int) int {
	off := 0
	for i := 0; i < count; {
		run := 1
		for i+run < count && run < 8191 && r.syms[i+run] == r.syms[i] {
			run++
		}
		var chunk uint16
		switch k := min(14, count-i); {
		case run >= 14 || i+run == count:
			chunk = uint16(r.syms[i])<<13 | uint16(run) // T=0, S, run length
			i += run
		case !hasLarge(r.syms[i : i+k]):
			chunk = 0x8000 // T=1, S=0: 14 one-bit symbols
			for j := 0; j < k; j++ {
				chunk |= uint16(r.syms[i+j]) << (13 - j)
			}
			i += k
		default:
			k = min(7, count-i)
			chunk = 0xc000 // T=1, S=1: 7 two-bit symbols
			for j := 0; j < k; j++ {
				chunk |= uint16(r.syms[i+j]) << (12 - 2*j)
			}
			i += k
		}
		binary.BigEndian.PutUint16(dst[off:], chunk)
		off += 2
	}
	return off
}

func hasLarge(syms []uint8) bool {
	for _, s := range syms {
		if s == symLargeDelta {
			return true
		}
	}
	return false
}
