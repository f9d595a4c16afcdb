// Package gop keeps, per video track, the packets from the last keyframe
// on (a GOP cache), so a player that joins gets a decodable picture at once
// instead of waiting up to a GOP for the next keyframe (SRS has no such
// cache for WebRTC players, notes/srs-reference.md §4.5). It also holds the
// keyframe-start detection for every video codec Fanout relays.
//
// It may be imported by fastpath and its sub-packages; it imports only the
// standard library and fastpath/route, whose Codec enum names the codec. A Cache is owned by the core that owns its stream and is
// not safe for concurrent use; it stores plaintext publisher packets in one
// preallocated slab and allocates nothing per packet.
package gop

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// Kind classifies an RTP payload for the cache.
type Kind uint8

// Payload kinds.
const (
	// Other is any packet that does not start a keyframe.
	Other Kind = iota
	// ParamSet starts a keyframe's access unit with parameter sets (H.264
	// SPS, H.265 VPS/SPS) but is not yet the keyframe picture itself.
	ParamSet
	// Keyframe is the start of an intra picture a decoder can start from
	// (H.264 IDR, H.265 IRAP, VP8/VP9 key frame, AV1 new coded sequence).
	Keyframe
)

// Classify tells whether the RTP payload of codec starts a keyframe.
// It never panics on malformed input.
func Classify(codec route.Codec, payload []byte) Kind {
	if len(payload) == 0 {
		return Other
	}
	switch codec {
	case route.CodecH264:
		return classifyH264(payload)
	case route.CodecH265:
		return classifyH265(payload)
	case route.CodecVP8:
		return classifyVP8(payload)
	case route.CodecVP9:
		return classifyVP9(payload)
	case route.CodecAV1:
		// AV1 RTP spec §4.4: N=1 in the aggregation header marks the first
		// packet of a coded video sequence, which starts with a key frame.
		if payload[0]&0x08 != 0 {
			return Keyframe
		}
	}
	return Other
}

// h264NAL maps an H.264 NAL unit type (RFC 6184 §1.3) to a Kind.
func h264NAL(typ uint8) Kind {
	switch typ {
	case 5: // coded slice of an IDR picture
		return Keyframe
	case 7: // sequence parameter set
		return ParamSet
	}
	return Other
}

// classifyH264 looks into single NAL unit packets, STAP-A/B (RFC 6184
// §5.7.1) and the first fragment of FU-A/B (§5.8).
func classifyH264(p []byte) Kind {
	switch typ := p[0] & 0x1f; typ {
	case 24, 25: // STAP-A, STAP-B (STAP-B has a 16-bit DON first)
		off := 1
		if typ == 25 {
			off = 3
		}
		best := Other
		for off+2 < len(p) {
			size := int(binary.BigEndian.Uint16(p[off:]))
			if size == 0 || off+2+size > len(p) {
				break
			}
			best = max(best, h264NAL(p[off+2]&0x1f))
			off += 2 + size
		}
		return best
	case 28, 29: // FU-A, FU-B: the FU header's S bit and NAL type
		if len(p) < 2 || p[1]&0x80 == 0 {
			return Other
		}
		return h264NAL(p[1] & 0x1f)
	default:
		return h264NAL(typ)
	}
}

// h265NAL maps an H.265 NAL unit type (ITU-T H.265 Table 7-1) to a Kind:
// 16–21 are IRAP pictures (BLA, IDR, CRA); VPS (32) and SPS (33) open a
// keyframe's access unit.
func h265NAL(typ uint8) Kind {
	switch {
	case typ >= 16 && typ <= 21:
		return Keyframe
	case typ == 32 || typ == 33:
		return ParamSet
	}
	return Other
}

// classifyH265 looks into single NAL unit packets, aggregation packets
// (RFC 7798 §4.4.2, type 48) and the first fragment of FUs (§4.4.3, type 49).
// DONL fields (sprop-max-don-diff > 0) are not used by WebRTC and not parsed.
func classifyH265(p []byte) Kind {
	if len(p) < 2 {
		return Other
	}
	switch typ := p[0] >> 1 & 0x3f; typ {
	case 48: // AP: 2-byte payload header, then [size16][NAL]...
		best := Other
		for off := 2; off+3 < len(p); {
			size := int(binary.BigEndian.Uint16(p[off:]))
			if size < 2 || off+2+size > len(p) {
				break
			}
			best = max(best, h265NAL(p[off+2]>>1&0x3f))
			off += 2 + size
		}
		return best
	case 49: // FU: payload header, FU header (S E type)
		if len(p) < 3 || p[2]&0x80 == 0 {
			return Other
		}
		return h265NAL(p[2] & 0x3f)
	default:
		return h265NAL(typ)
	}
}

// classifyVP8 reads the payload descriptor (RFC 7741 §4.2) and, in the first
// packet of partition 0 (S=1, PID=0), the P bit of the VP8 payload header
// (§4.3): 0 means a key frame.
func classifyVP8(p []byte) Kind {
	if p[0]&0x10 == 0 || p[0]&0x07 != 0 { // S, PID
		return Other
	}
	off := 1
	if p[0]&0x80 != 0 { // X: extension byte I L T K
		if len(p) < 2 {
			return Other
		}
		x := p[1]
		off = 2
		if x&0x80 != 0 { // I: PictureID, 7 or 15 bits (M)
			if len(p) <= off {
				return Other
			}
			off++
			if p[off-1]&0x80 != 0 {
				off++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			off++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			off++
		}
	}
	if off >= len(p) || p[off]&0x01 != 0 {
		return Other
	}
	return Keyframe
}

// classifyVP9 reads the payload descriptor (RFC 9628 §4.2): B=1 (first
// packet of a frame) with P=0 (not inter-predicted) in the base spatial layer
// (SID 0, when layer indices are present) is a key frame start.
func classifyVP9(p []byte) Kind {
	const bitI, bitP, bitL, bitB = 0x80, 0x40, 0x20, 0x08
	if p[0]&bitP != 0 || p[0]&bitB == 0 {
		return Other
	}
	off := 1
	if p[0]&bitI != 0 { // picture ID, 7 or 15 bits (M)
		if len(p) <= off {
			return Other
		}
		off++
		if p[off-1]&0x80 != 0 {
			off++
		}
	}
	if p[0]&bitL != 0 { // layer indices: TID(3) U(1) SID(3) D(1)
		if len(p) <= off || p[off]>>1&0x07 != 0 {
			return Other
		}
	}
	return Keyframe
}
