// Package rtcpx is Fanout's zero-allocation RTCP: the compound-packet walker
// the fastpath reads every decrypted RTCP packet with (Walk) and parsers for
// the packets it acts on (SR, RR report blocks, RTPFB/PSFB feedback, XR DLRR), receive statistics per
// publisher SSRC (RFC 3550 §6.4 and Appendix A), and builders for Receiver
// Reports to publishers, Sender Reports to players (translated from the
// publisher's) and XR RRTR (RFC 3611) for round-trip times.
//
// It may be imported by fastpath and its sub-packages; it imports only the
// standard library. Parsers are pure functions that never panic on any
// input (FuzzWalk). ReceiveStats and RTTLog values are owned by one core and
// are not safe for concurrent use. Times are int64 nanoseconds on the
// caller's monotonic clock, passed in; nothing reads the clock or allocates.
package rtcpx

import "encoding/binary"

// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611 §2).
const (
	TypeSR    = 200
	TypeRR    = 201
	TypeSDES  = 202
	TypeBYE   = 203
	TypeAPP   = 204
	TypeRTPFB = 205
	TypePSFB  = 206
	TypeXR    = 207
)

// Feedback message types: FMT values of RTPFB (RFC 4585 §6.2, transport-cc
// draft §3.1) and PSFB (RFC 4585 §6.3, RFC 5104 §4.3) packets.
const (
	FmtNACK = 1  // RTPFB generic NACK
	FmtTCC  = 15 // RTPFB transport-wide congestion control
	FmtPLI  = 1  // PSFB picture loss indication
	FmtSLI  = 2
	FmtRPSI = 3
	FmtFIR  = 4  // PSFB full intra request
	FmtAFB  = 15 // PSFB application layer feedback (REMB)
)

// Walk visits each packet of the compound RTCP packet pkt in order, calling
// fn with the packet type, the 5-bit count/FMT field and the packet (its
// header included, its padding excluded). It checks RFC 3550 §6.4.1 and
// Appendix A.2: version 2, every length inside the buffer, padding only on
// the last packet and no bigger than it. It returns how many packets were
// visited and whether the whole buffer was valid; at the first invalid packet
// it stops (packets already visited stay visited). Reduced-size RTCP
// (RFC 5506) is accepted: the first packet need not be an SR or RR.
func Walk(pkt []byte, fn func(pt, count uint8, p []byte)) (int, bool) {
	n := 0
	for len(pkt) > 0 {
		if len(pkt) < 4 || pkt[0]>>6 != 2 {
			return n, false
		}
		size := 4 * (int(binary.BigEndian.Uint16(pkt[2:])) + 1)
		if size > len(pkt) {
			return n, false
		}
		p := pkt[:size]
		if pkt[0]&0x20 != 0 {
			pad := int(p[size-1])
			if size != len(pkt) || pad == 0 || pad > size-4 {
				return n, false
			}
			p = p[:size-pad]
		}
		fn(pkt[1], pkt[0]&0x1f, p)
		n++
		pkt = pkt[size:]
	}
	return n, n > 0
}

// SenderInfo is an SR's sender information (RFC 3550 §6.4.1).
type SenderInfo struct {
	SSRC    uint32
	NTP     uint64 // 32.32 fixed point seconds since 1900
	RTPTime uint32
	Packets uint32
	Octets  uint32
}

// ReportBlock is one reception report (RFC 3550 §6.4.1).
type ReportBlock struct {
	SSRC          uint32
	FractionLost  uint8
	TotalLost     int32 // 24-bit signed on the wire
	ExtHighestSeq uint32
	Jitter        uint32 // RTP timestamp units
	LSR, DLSR     uint32 // middle 32 bits of the last SR's NTP; delay in 1/65536 s
}

// ParseSR reads an SR's sender information. p is a packet from Walk.
func ParseSR(p []byte) (SenderInfo, bool) {
	if len(p) < 28 || p[1] != TypeSR || len(p) < 28+24*int(p[0]&0x1f) {
		return SenderInfo{}, false
	}
	return SenderInfo{
		SSRC:    binary.BigEndian.Uint32(p[4:]),
		NTP:     binary.BigEndian.Uint64(p[8:]),
		RTPTime: binary.BigEndian.Uint32(p[16:]),
		Packets: binary.BigEndian.Uint32(p[20:]),
		Octets:  binary.BigEndian.Uint32(p[24:]),
	}, true
}

// Reports calls fn for each report block of an SR or RR packet p and returns
// how many there were; blocks beyond the packet's length are not visited.
func Reports(p []byte, fn func(ReportBlock)) int {
	if len(p) < 8 {
		return 0
	}
	off := 8
	switch p[1] {
	case TypeSR:
		off = 28
	case TypeRR:
	default:
		return 0
	}
	n := 0
	for i := 0; i < int(p[0]&0x1f) && off+24 <= len(p); i++ {
		fn(parseBlock(p[off : off+24]))
		off += 24
		n++
	}
	return n
}

func parseBlock(b []byte) ReportBlock {
	lost := int32(uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7])) << 8 >> 8 // sign-extend 24 bits
	return ReportBlock{
		SSRC:          binary.BigEndian.Uint32(b),
		FractionLost:  b[4],
		TotalLost:     lost,
		ExtHighestSeq: binary.BigEndian.Uint32(b[8:]),
		Jitter:        binary.BigEndian.Uint32(b[12:]),
		LSR:           binary.BigEndian.Uint32(b[16:]),
		DLSR:          binary.BigEndian.Uint32(b[20:]),
	}
}

// ParseFeedback splits an RTPFB or PSFB packet (RFC 4585 §6.1) into its FMT,
// sender and media SSRCs and FCI.
func ParseFeedback(p []byte) (format uint8, sender, media uint32, fci []byte, ok bool) {
	if len(p) < 12 || (p[1] != TypeRTPFB && p[1] != TypePSFB) {
		return 0, 0, 0, nil, false
	}
	return p[0] & 0x1f, binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:]), p[12:], true
}

// XR block types (RFC 3611 §4).
const (
	BlockRRTR = 4 // receiver reference time, §4.4
	BlockDLRR = 5 // delay since last receiver report, §4.5
)

// XRBlocks calls fn with the block type and each report block (its 4-byte
// header included) of an XR packet p (RFC 3611 §2, §3) and returns the XR
// sender's SSRC; ok is false when a block runs past the packet.
func XRBlocks(p []byte, fn func(bt uint8, block []byte)) (ssrc uint32, ok bool) {
	if len(p) < 8 || p[1] != TypeXR {
		return 0, false
	}
	ssrc = binary.BigEndian.Uint32(p[4:])
	for b := p[8:]; len(b) > 0; {
		if len(b) < 4 {
			return ssrc, false
		}
		size := 4 * (int(binary.BigEndian.Uint16(b[2:])) + 1)
		if size > len(b) {
			return ssrc, false
		}
		fn(b[0], b[:size])
		b = b[size:]
	}
	return ssrc, true
}

// ParseDLRR calls fn for each sub-block of a DLRR block (RFC 3611 §4.5:
// SSRC, LRR = middle 32 bits of that receiver's RRTR NTP, DLRR in 1/65536 s)
// and returns how many there were.
func ParseDLRR(block []byte, fn func(ssrc, lrr, dlrr uint32)) int {
	if len(block) < 4 || block[0] != BlockDLRR {
		return 0
	}
	n := 0
	for b := block[4:]; len(b) >= 12; b = b[12:] {
		fn(binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]))
		n++
	}
	return n
}

// FindDLRR returns the DLRR sub-block addressed to ssrc (the SSRC Fanout
// sent its RRTR with) in the XR packet p.
func FindDLRR(p []byte, ssrc uint32) (lrr, dlrr uint32, ok bool) {
	XRBlocks(p, func(bt uint8, block []byte) {
		if bt != BlockDLRR {
			return
		}
		ParseDLRR(block, func(s, l, d uint32) {
			if s == ssrc && !ok {
				lrr, dlrr, ok = l, d, true
			}
		})
	})
	return lrr, dlrr, ok
}
