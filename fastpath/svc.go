package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// Temporal scalability (SVC) for VP9 and AV1: a publisher's stream with
// temporal layers (L1T2, L1T3…) carries each packet's temporal layer id in
// its VP9 payload descriptor (RFC 9628 §4.2, TID of the layer indices) or
// its AV1 dependency descriptor (svcav1.go). A player whose
// route.Session.Temporal is n gets only the packets with TID < n: each one
// dropped moves its sequence rewrite back by one, so it still sees
// consecutive sequence numbers, and restarts its NACK window (a NACK for a
// packet sent before the drop cannot be mapped back). A new cap (the API's
// or the estimator's) takes effect where the player's decoder can follow:
// a lower one at the next frame start, a higher one at the next start of a
// TID 0 frame, which refers to no frame of the layers it did not get.

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

// temporalOf returns the temporal layer of a stripped video packet of s
// (of simulcast layer), and whether it starts a frame (VP9's B bit, AV1's
// start_of_frame). On the publisher's owner core.
func (c *core) temporalOf(s *route.Session, layer uint8, stripped []byte) (uint8, bool) {
	switch s.Tracks[route.KindVideo].Codec {
	case route.CodecVP9:
		off := payloadOffset(stripped)
		if off < 0 || off >= len(stripped) {
			return noTID, false
		}
		return vp9TID(stripped[off:]), stripped[off]&0x08 != 0
	case route.CodecAV1:
		return c.av1TID(s, layer, stripped)
	}
	return noTID, false
}

// temporalScalable reports whether publisher s's video may carry temporal
// layers Fanout can drop: VP9, or AV1 with the dependency descriptor. The
// estimator (layerauto.go) moves such a stream's players through them.
func temporalScalable(s *route.Session) bool {
	c := s.Tracks[route.KindVideo].Codec
	return c == route.CodecVP9 || c == route.CodecAV1 && s.DDExt != 0
}

// passTemporal reports whether player ps gets data, a video packet of
// temporal layer tid from publisher src (start: it starts a frame), and
// when not, takes the packet out of its sequence numbering.
func (c *core) passTemporal(ps *route.Session, pst *sessState, src route.SessionID, epoch uint32, tid uint8, start bool, layers uint8, data []byte) bool {
	if tid == noTID {
		return true
	}
	ot := &pst.out[route.KindVideo]
	fresh := !ot.started || ot.src != src || ot.srcEpoch != epoch
	limit := c.temporalCap(ps, pst, tid, start, fresh, layers)
	if limit == 0 || tid < limit {
		return true
	}
	if fresh || len(data) < 12 {
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

// temporalCap is the temporal cap in force for player ps (0 = none), moved
// to the one it wants (its own, lowered by the estimator's level,
// layerauto.go) only where its decoder can follow: at once for a source it
// has not started, else down at a frame start, up at a TID 0 frame start.
func (c *core) temporalCap(ps *route.Session, pst *sessState, tid uint8, start, fresh bool, layers uint8) uint8 {
	want := ps.Temporal
	if f := pst.lay.auto.floor; ps.LayerAuto && layers == 0 && f > 0 { // the estimator's level (layerauto.go)
		if a := maxAutoTemporal - min(f, maxAutoTemporal-1); want == 0 || a < want {
			want = a
		}
	}
	cur := &pst.lay.tcap
	lower := want != 0 && (*cur == 0 || want < *cur)
	if want != *cur && (fresh || start && (lower || tid == 0)) {
		*cur = want
	}
	return *cur
}
