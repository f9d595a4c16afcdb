package rtph264

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Packetizer turns access units into RTP packets.
type Packetizer struct {
	PayloadType uint8
	SSRC        uint32
	// KeepBframe sends B slices (SRS keep_bframe); default drops them.
	KeepBframe bool
	// DropSEI drops SEI NAL units (SRS keep_avc_nalu_sei off).
	DropSEI bool

	seq      uint16
	sps, pps []byte
}

// NewPacketizer returns a packetizer starting at sequence number seq.
func NewPacketizer(pt uint8, ssrc uint32, seq uint16) *Packetizer {
	return &Packetizer{PayloadType: pt, SSRC: ssrc, seq: seq}
}

// Packetize appends the packets for one access unit presented at ts (90 kHz)
// to dst; each packet is a new slice. It returns dst unchanged for a dropped
// B-frame or an access unit with nothing to send.
func (p *Packetizer) Packetize(dst [][]byte, au [][]byte, ts uint32) [][]byte {
	idr := false
	var send [][]byte
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeSPS:
			p.sps = append(p.sps[:0], n...)
			continue
		case h264.NALUTypePPS:
			p.pps = append(p.pps[:0], n...)
			continue
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSEI:
			if p.DropSEI {
				continue
			}
		case h264.NALUTypeIDR:
			idr = true
		}
		send = append(send, n)
	}
	if len(send) == 0 || (!p.KeepBframe && IsBFrame(au)) {
		return dst
	}
	if idr && p.sps != nil && p.pps != nil {
		dst = append(dst, p.stapA(ts))
	}
	for i, n := range send {
		dst = p.nalu(dst, n, ts, i == len(send)-1)
	}
	return dst
}

func (p *Packetizer) header(b []byte, ts uint32, marker bool) []byte {
	m := byte(0)
	if marker {
		m = 0x80
	}
	b = append(b, 0x80, m|p.PayloadType&0x7F)
	b = binary.BigEndian.AppendUint16(b, p.seq)
	b = binary.BigEndian.AppendUint32(b, ts)
	p.seq++
	return binary.BigEndian.AppendUint32(b, p.SSRC)
}

func (p *Packetizer) stapA(ts uint32) []byte {
	b := make([]byte, 0, headerLen+5+len(p.sps)+len(p.pps))
	b = p.header(b, ts, false)
	nri := (p.sps[0] | p.pps[0]) & 0x60
	b = append(b, nri|naluSTAPA)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.sps)))
	b = append(b, p.sps...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.pps)))
	return append(b, p.pps...)
}

// nalu appends one NAL unit as a single packet or FU-A fragments carrying
// up to MaxPayload bytes of the unit each (RFC 6184 5.8).
func (p *Packetizer) nalu(dst [][]byte, n []byte, ts uint32, last bool) [][]byte {
	if len(n) <= MaxPayload {
		b := p.header(make([]byte, 0, headerLen+len(n)), ts, last)
		return append(dst, append(b, n...))
	}
	ind := n[0]&0xE0 | naluFUA
	typ := n[0] & 0x1F
	for rest, first := n[1:], true; len(rest) > 0; first = false {
		k := min(len(rest), MaxPayload)
		end := k == len(rest)
		fu := typ
		if first {
			fu |= 0x80
		}
		if end {
			fu |= 0x40
		}
		b := p.header(make([]byte, 0, headerLen+2+k), ts, last && end)
		b = append(b, ind, fu)
		dst = append(dst, append(b, rest[:k]...))
		rest = rest[k:]
	}
	return dst
}

// IsBFrame reports whether the access unit's first slice is a B slice
// (slice_type 1 or 6, ITU-T H.264 7.4.3).
func IsBFrame(au [][]byte) bool {
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		t := h264.NALUType(n[0] & 0x1F)
		if t != h264.NALUTypeNonIDR && t != h264.NALUTypeIDR {
			continue
		}
		hdr := h264.EmulationPreventionRemove(n[1:min(len(n), 32)])
		pos := 0
		if _, err := bits.ReadGolombUnsigned(hdr, &pos); err != nil { // first_mb_in_slice
			return false
		}
		st, err := bits.ReadGolombUnsigned(hdr, &pos)
		return err == nil && st%5 == 1
	}
	return false
}
