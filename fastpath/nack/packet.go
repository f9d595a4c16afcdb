package nack

import "encoding/binary"

// RTCP transport-layer feedback (RFC 4585 §6.1) with FMT 1, generic NACK.
const (
	ptRTPFB    = 205
	fmtNACK    = 1
	nackHeader = 12 // common header + sender SSRC + media SSRC
)

// BuildNACK writes one generic NACK packet (RFC 4585 §6.2.1) for seqs into
// dst and returns its length and how many of seqs it carries. Each FCI is a
// PID plus a bitmask (BLP) of the 16 following sequence numbers, so seqs in
// ascending order (as Collect returns them) pack best; any order is valid.
// When dst is too small for all FCIs, call again with seqs[used:].
// n == 0 means dst cannot hold even one FCI (16 bytes) or seqs is empty.
func BuildNACK(dst []byte, senderSSRC, mediaSSRC uint32, seqs []uint16) (n, used int) {
	if len(dst) < nackHeader+4 || len(seqs) == 0 {
		return 0, 0
	}
	maxFCI := min((len(dst)-nackHeader)/4, 0xffff-2)
	off, fci := nackHeader, 0
	var pid, blp uint16
	for used < len(seqs) {
		s := seqs[used]
		if fci > 0 {
			if d := s - pid; d >= 1 && d <= 16 {
				blp |= 1 << (d - 1) // RFC 4585 §6.2.1: bit i of BLP is PID+i+1
				used++
				continue
			}
			binary.BigEndian.PutUint16(dst[off+2:], blp)
			off += 4
			if fci == maxFCI {
				break
			}
		}
		pid, blp = s, 0
		binary.BigEndian.PutUint16(dst[off:], pid)
		fci++
		used++
	}
	if used == len(seqs) {
		binary.BigEndian.PutUint16(dst[off+2:], blp)
		off += 4
	}
	dst[0], dst[1] = 0x80|fmtNACK, ptRTPFB
	binary.BigEndian.PutUint16(dst[2:], uint16(off/4-1))
	binary.BigEndian.PutUint32(dst[4:], senderSSRC)
	binary.BigEndian.PutUint32(dst[8:], mediaSSRC)
	return off, used
}

// ParseNACK calls fn for every sequence number a generic NACK's FCI list
// asks for (RFC 4585 §6.2.1), PID first and then BLP bits in order, and
// returns how many there were. fci is the packet after its 12-byte header;
// a trailing partial FCI is ignored. It does not allocate (fn does not
// escape).
func ParseNACK(fci []byte, fn func(seq uint16)) int {
	count := 0
	for ; len(fci) >= 4; fci = fci[4:] {
		pid := binary.BigEndian.Uint16(fci)
		blp := binary.BigEndian.Uint16(fci[2:])
		fn(pid)
		count++
		for i := uint16(0); blp != 0; i++ {
			if blp&1 != 0 {
				fn(pid + i + 1)
				count++
			}
			blp >>= 1
		}
	}
	return count
}
