package twcc

import "encoding/binary"

// Reading the feedback a player sends about the packets Fanout stamped with
// its transport-wide sequence numbers (fastpath/bwe is the consumer).

// Arrival is one packet of a feedback: its transport sequence number,
// whether it arrived, and when, in ns on the receiver's clock (the
// reference time plus the receive deltas, draft §3.1).
type Arrival struct {
	Seq      uint16
	Received bool
	At       int64
}

// ParseFeedback reads the FCI of a transport-wide feedback packet (RTPFB
// FMT=15, draft §3.1: base sequence number, packet status count, 24-bit
// reference time in 64 ms, feedback packet count, packet chunks, receive
// deltas) and writes its packets, in sequence order, into dst. It returns
// how many it wrote (at most len(dst); a longer feedback is cut) and false
// when the FCI is malformed: chunks or deltas past its end. It never
// panics and never allocates.
func ParseFeedback(fci []byte, dst []Arrival) (int, bool) {
	if len(fci) < 8 {
		return 0, false
	}
	base := binary.BigEndian.Uint16(fci)
	count := int(binary.BigEndian.Uint16(fci[2:]))
	ref := int64(int32(binary.BigEndian.Uint32(fci[4:]))>>8) * refTick // 24-bit signed
	// First pass: where the chunks end and the deltas begin.
	off, seen := 8, 0
	for seen < count {
		if off+2 > len(fci) {
			return 0, false
		}
		seen += chunkLen(binary.BigEndian.Uint16(fci[off:]))
		off += 2
	}
	deltas, at, n := off, ref, 0
	off, seen = 8, 0
	for seen < count {
		chunk := binary.BigEndian.Uint16(fci[off:])
		off += 2
		for i := range min(chunkLen(chunk), count-seen) {
			sym := chunkSymbol(chunk, i)
			a := Arrival{Seq: base + uint16(seen+i)}
			switch sym {
			case symSmallDelta:
				if deltas+1 > len(fci) {
					return n, false
				}
				at += int64(fci[deltas]) * deltaTick
				deltas++
			case symLargeDelta:
				if deltas+2 > len(fci) {
					return n, false
				}
				at += int64(int16(binary.BigEndian.Uint16(fci[deltas:]))) * deltaTick
				deltas += 2
			}
			if sym == symSmallDelta || sym == symLargeDelta {
				a.Received, a.At = true, at
			}
			if n < len(dst) {
				dst[n] = a
				n++
			}
		}
		seen += chunkLen(chunk)
	}
	return n, true
}

// chunkLen is how many statuses a packet chunk holds (draft §3.1.3–3.1.4):
// a run length chunk its run, a status vector chunk 14 one-bit or 7
// two-bit symbols.
func chunkLen(chunk uint16) int {
	switch {
	case chunk&0x8000 == 0:
		return int(chunk & 0x1fff)
	case chunk&0x4000 == 0:
		return 14
	}
	return 7
}

// chunkSymbol is the status of the i-th packet of chunk.
func chunkSymbol(chunk uint16, i int) uint8 {
	switch {
	case chunk&0x8000 == 0:
		return uint8(chunk>>13) & 3
	case chunk&0x4000 == 0:
		return uint8(chunk>>(13-i)) & 1
	}
	return uint8(chunk>>(12-2*i)) & 3
}
