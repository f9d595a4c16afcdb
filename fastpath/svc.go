package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// Temporal scalability (SVC) for VP9: a publisher's VP9 stream with
// temporal layers (L1T2, L1T3…) carries each packet's temporal layer id in
// its payload descriptor (RFC 9628 §4.2, TID of the layer indices). A
// player whose route.Session.Temporal is n gets only the packets with
// TID < n: each one dropped moves its sequence rewrite back by one, so it
// still sees consecutive sequence numbers, and restarts its NACK window
// (a NACK for a packet sent before the drop cannot be mapped back).

// noTID marks a packet that carries no temporal layer id.
const noTID = 0xff

// vp9TID returns the temporal layer id in a VP9 RTP payload descriptor,
// noTID when it has no layer indices (L=0) or is too short.
func vp9TID(p []byte) uint8 {
	const bitI, bitL = 0x80, 0x20
	if len(p) == 0 || p[0]&bitL == 0 {
		return noTID
	}
	off := 1
	if p[0]&bitI != 0 { // picture ID, 7 or 15 bits (M)
		if len(p) <= off {
			return noTID
		}
		off++
		if p[off-1]&0x80 != 0 {
			off++
		}
	}
	if len(p) <= off {
		return noTID
	}
	return p[off] >> 5
}

// temporalOf returns the temporal layer of a stripped video packet of s.
func temporalOf(s *route.Session, stripped []byte) uint8 {
	if s.Tracks[route.KindVideo].Codec != route.CodecVP9 || len(stripped) < 12 {
		return noTID
	}
	off := 12 + 4*int(stripped[0]&0x0f)
	if off >= len(stripped) {
		return noTID
	}
	return vp9TID(stripped[off:])
}

// passTemporal reports whether player ps gets data, a video packet of
// temporal layer tid from publisher src, and when not, takes the packet
// out of its sequence numbering.
func (c *core) passTemporal(ps *route.Session, pst *sessState, src route.SessionID, epoch uint32, tid, layers uint8, data []byte) bool {
	limit := ps.Temporal
	if f := pst.lay.auto.floor; ps.LayerAuto && layers == 0 && f > 0 { // the estimator's level (layerauto.go)
		if a := maxAutoTemporal - min(f, maxAutoTemporal-1); limit == 0 || a < limit {
			limit = a
		}
	}
	if tid == noTID || limit == 0 || tid < limit {
		return true
	}
	ot := &pst.out[route.KindVideo]
	if !ot.started || ot.src != src || ot.srcEpoch != epoch || len(data) < 12 {
		return false // not sent anything of this source yet: its first packet sets the numbering
	}
	seq := binary.BigEndian.Uint16(data[2:]) + ot.seqDelta
	if int16(seq-ot.lastSeq) <= 0 {
		return false // late: the numbering has moved past it
	}
	ot.seqDelta--
	ot.firstSeq = ot.lastSeq + 1
	pst.lay.tdrops++
	c.cnt.temporalDrops.Add(1)
	return false
}
