package nack

import "encoding/binary"

// rtpPayload returns where the payload of an RTP packet starts and ends
// (RFC 3550 §5.1: fixed header, CSRCs, header extension, padding).
func rtpPayload(pkt []byte) (start, end int, ok bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return 0, 0, false
	}
	start = 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // X: extension header, RFC 3550 §5.3.1
		if len(pkt) < start+4 {
			return 0, 0, false
		}
		start += 4 + 4*int(binary.BigEndian.Uint16(pkt[start+2:]))
	}
	end = len(pkt)
	if pkt[0]&0x20 != 0 { // P: the last octet counts the padding
		end -= int(pkt[len(pkt)-1])
	}
	if start > end || end > len(pkt) {
		return 0, 0, false
	}
	return start, end, true
}

// BuildRTX writes into dst the retransmission of the RTP packet pkt in RTX
// format (RFC 4588 §4): the header is copied with its CSRCs and extensions,
// payload type, sequence number and SSRC become the RTX stream's, the
// timestamp and marker stay, the original sequence number (OSN) is the first
// two payload octets, then the original payload. Padding is dropped. It
// returns the length, or false when pkt is not RTP or dst is too small.
// dst must not overlap pkt.
func BuildRTX(dst, pkt []byte, ssrc uint32, pt uint8, seq uint16) (int, bool) {
	start, end, ok := rtpPayload(pkt)
	if !ok || len(dst) < end+2 {
		return 0, false
	}
	copy(dst, pkt[:start])
	dst[0] &^= 0x20 // no padding
	dst[1] = dst[1]&0x80 | pt&0x7f
	binary.BigEndian.PutUint16(dst[2:], seq)
	binary.BigEndian.PutUint32(dst[8:], ssrc)
	copy(dst[start:], pkt[2:4]) // OSN
	copy(dst[start+2:], pkt[start:end])
	return end + 2, true
}

// UnwrapRTX restores into dst the original packet carried by an RTX packet
// (RFC 4588 §4), given the original stream's SSRC and payload type, and
// returns its length and sequence number (the OSN). dst may be rtx itself:
// the payload moves two octets towards the front.
func UnwrapRTX(dst, rtx []byte, ssrc uint32, pt uint8) (n int, osn uint16, ok bool) {
	start, end, ok := rtpPayload(rtx)
	if !ok || end-start < 2 || len(dst) < end-2 {
		return 0, 0, false
	}
	osn = binary.BigEndian.Uint16(rtx[start:])
	copy(dst, rtx[:start])
	copy(dst[start:], rtx[start+2:end])
	dst[0] &^= 0x20
	dst[1] = dst[1]&0x80 | pt&0x7f
	binary.BigEndian.PutUint16(dst[2:], osn)
	binary.BigEndian.PutUint32(dst[8:], ssrc)
	return end - 2, osn, true
}
