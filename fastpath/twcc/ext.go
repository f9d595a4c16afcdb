package twcc

import "encoding/binary"

// FindExtension returns the value of RTP header extension id in the raw
// packet pkt, in either RFC 8285 form: one-byte headers (profile 0xBEDE,
// §4.2, ids 1–14) or two-byte headers (profile 0x100X, §4.3, ids 1–255).
// The slice aliases pkt. It never panics on malformed input.
func FindExtension(pkt []byte, id uint8) ([]byte, bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 || pkt[0]&0x10 == 0 || id == 0 {
		return nil, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if len(pkt) < off+4 {
		return nil, false
	}
	profile := binary.BigEndian.Uint16(pkt[off:])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	if end > len(pkt) {
		return nil, false
	}
	b := pkt[off+4 : end]
	switch {
	case profile == 0xbede:
		return findOneByte(b, id)
	case profile&0xfff0 == 0x1000:
		return findTwoByte(b, id)
	}
	return nil, false
}

// findOneByte walks one-byte elements: ID (4 bits), L (4 bits, length-1).
// ID 0 is a padding byte; ID 15 stops the walk (RFC 8285 §4.2).
func findOneByte(b []byte, id uint8) ([]byte, bool) {
	for i := 0; i < len(b); {
		eid, l := b[i]>>4, int(b[i]&0x0f)+1
		switch eid {
		case 0:
			i++
			continue
		case 15:
			return nil, false
		}
		if i+1+l > len(b) {
			return nil, false
		}
		if eid == id {
			return b[i+1 : i+1+l], true
		}
		i += 1 + l
	}
	return nil, false
}

// findTwoByte walks two-byte elements: ID (8 bits), length (8 bits); a zero
// byte in the ID position is padding (RFC 8285 §4.3).
func findTwoByte(b []byte, id uint8) ([]byte, bool) {
	for i := 0; i < len(b); {
		if b[i] == 0 {
			i++
			continue
		}
		if i+2 > len(b) {
			return nil, false
		}
		eid, l := b[i], int(b[i+1])
		if i+2+l > len(b) {
			return nil, false
		}
		if eid == id {
			return b[i+2 : i+2+l], true
		}
		i += 2 + l
	}
	return nil, false
}

// TransportSeq reads the transport-wide sequence number (draft §2: a
// 16-bit value) from header extension id of the raw RTP packet pkt.
func TransportSeq(pkt []byte, id uint8) (uint16, bool) {
	v, ok := FindExtension(pkt, id)
	if !ok || len(v) < 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(v), true
}
