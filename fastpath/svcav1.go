package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/av1dd"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/twcc"
)

// Temporal scalability for AV1 (svc.go for the player side): an AV1
// publisher that negotiated the dependency descriptor header extension
// (route.Session.DDExt) names each packet's frame template in it, and on
// key frames sends the template structure that gives each template its
// temporal layer (fastpath/av1dd). The owner core keeps the structure per
// track or simulcast layer (pubState.dd) and reads each packet's temporal
// id and start of frame from it.
//
// The descriptor is the one header extension kept when a publisher's
// packet is stripped (core.go): history, GOP cache and fan-out hold it in a
// canonical form under the publisher's id, and each player gets it
// rewritten under its own id (or removed when it negotiated none), so a
// player's decoder still sees the descriptor, and one that joins later
// gets the structure from the replayed key frame.

// av1TID returns the temporal id of stripped, an AV1 packet of publisher s
// (of simulcast layer), and whether it starts a frame; a descriptor that
// carries a structure replaces the layer's. Owner core only.
func (c *core) av1TID(s *route.Session, layer uint8, stripped []byte) (uint8, bool) {
	if s.DDExt == 0 || int(s.ID) >= len(c.sess) || layer >= route.MaxLayers {
		return noTID, false
	}
	q := c.sess[s.ID].pub
	if q == nil {
		return noTID, false
	}
	b, ok := twcc.FindExtension(stripped, s.DDExt)
	if !ok {
		return noTID, false
	}
	var d av1dd.Descriptor
	if av1dd.Parse(b, &q.dd[layer], &d) != nil {
		c.cnt.ddInvalid.Add(1)
		return noTID, false
	}
	return d.Temporal, d.StartOfFrame
}

// writeExt writes a header extension block holding the one element id =
// data at dst[0:] (RFC 8285): the one-byte form (§4.2) when it fits, the
// two-byte form (§4.3) otherwise. It returns the block's length, 0 when it
// does not fit in dst or data cannot be carried (empty or over 255 bytes).
func writeExt(dst []byte, id uint8, data []byte) int {
	return writeExts(dst, id, data, 0, nil)
}

// writeExts is writeExt with a second element id2 = data2 after the first
// when id2 is not 0 (a player's descriptor and its transport sequence
// number): one block, in the one-byte form only when both fit it.
func writeExts(dst []byte, id uint8, data []byte, id2 uint8, data2 []byte) int {
	n, n2 := len(data), len(data2)
	if n == 0 || n > 255 || id == 0 || id2 != 0 && (n2 == 0 || n2 > 255) {
		return 0
	}
	oneByte := id <= 14 && n <= 16 && (id2 == 0 || id2 <= 14 && n2 <= 16)
	head := 2
	if oneByte {
		head = 1
	}
	body := head + n
	if id2 != 0 {
		body += head + n2
	}
	total := 4 + (body+3)&^3
	if total > len(dst) {
		return 0
	}
	profile := uint16(0x1000)
	if oneByte {
		profile = 0xbede
	}
	binary.BigEndian.PutUint16(dst, profile)
	binary.BigEndian.PutUint16(dst[2:], uint16((total-4)/4))
	off := 4 + putElement(dst[4:], oneByte, id, data)
	if id2 != 0 {
		off += putElement(dst[off:], oneByte, id2, data2)
	}
	clear(dst[off:total])
	return total
}

// putElement writes one element in the block's form and returns its size.
func putElement(dst []byte, oneByte bool, id uint8, data []byte) int {
	if oneByte {
		dst[0] = id<<4 | uint8(len(data)-1)
		return 1 + copy(dst[1:], data)
	}
	dst[0], dst[1] = id, uint8(len(data))
	return 2 + copy(dst[2:], data)
}

// keepExtension copies the RTP packet p into dst with only its header
// extension element from (the dependency descriptor) left, under id to in
// writeExt's form, and returns the length; without that element it strips
// them all.
func keepExtension(dst, p []byte, from, to uint8) int {
	data, ok := twcc.FindExtension(p, from)
	fixed := 12 + 4*int(p[0]&0x0f)
	if !ok || len(dst) < len(p)+8 {
		return stripExtensions(dst, p)
	}
	payload := fixed + 4 + 4*int(binary.BigEndian.Uint16(p[fixed+2:]))
	copy(dst, p[:fixed])
	n := writeExt(dst[fixed:], to, data)
	if n == 0 {
		return stripExtensions(dst, p)
	}
	return fixed + n + copy(dst[fixed+n:], p[payload:])
}

// copyOut copies pkt, a stripped packet, into dst for a player whose
// dependency descriptor id is id: a kept extension is rewritten under it,
// or dropped when id is 0 (RFC 8285 §4: an id means nothing unless
// negotiated). It returns the length.
func copyOut(dst, pkt []byte, id uint8) int {
	if pkt[0]&0x10 == 0 {
		return copy(dst, pkt)
	}
	if id == 0 {
		return stripExtensions(dst, pkt)
	}
	return keepExtension(dst, pkt, anyExtID(pkt), id)
}

// anyExtID is the id of the first element of pkt's extension block, which
// after keepExtension is its only one; 0 if none.
func anyExtID(pkt []byte) uint8 {
	off := 12 + 4*int(pkt[0]&0x0f)
	if len(pkt) < off+5 {
		return 0
	}
	switch p := binary.BigEndian.Uint16(pkt[off:]); {
	case p == 0xbede:
		return pkt[off+4] >> 4
	case p&0xfff0 == 0x1000:
		return pkt[off+4]
	}
	return 0
}

// payloadOffset is where the payload of the RTP packet p starts, -1 when
// it is shorter than its header says.
func payloadOffset(p []byte) int {
	if len(p) < 12 {
		return -1
	}
	off := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 {
		if len(p) < off+4 {
			return -1
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	if off > len(p) {
		return -1
	}
	return off
}
