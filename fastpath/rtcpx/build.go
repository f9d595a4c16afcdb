package rtcpx

import "encoding/binary"

// MaxReports is the most report blocks one SR or RR carries (5-bit RC).
const MaxReports = 31

// ntpEpochOffset is the seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// NTPFromUnixNano converts a wall-clock time (ns since the Unix epoch) to a
// 64-bit NTP timestamp (RFC 3550 §4: 32.32 fixed point seconds since 1900).
func NTPFromUnixNano(ns int64) uint64 {
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}

// NTPDuration converts a non-negative duration in ns to NTP 32.32 units.
func NTPDuration(ns int64) uint64 {
	return uint64(ns/1e9)<<32 | uint64(ns%1e9)<<32/1e9
}

// NTPMiddle returns the middle 32 bits of an NTP timestamp, the form LSR
// and LRR fields carry (RFC 3550 §6.4.1, RFC 3611 §4.5).
func NTPMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

func putHeader(dst []byte, count, pt uint8, size int) {
	dst[0], dst[1] = 0x80|count&0x1f, pt
	binary.BigEndian.PutUint16(dst[2:], uint16(size/4-1))
}

func putBlock(b []byte, rb ReportBlock) {
	binary.BigEndian.PutUint32(b, rb.SSRC)
	lost := uint32(rb.TotalLost) & 0xffffff
	binary.BigEndian.PutUint32(b[4:], uint32(rb.FractionLost)<<24|lost)
	binary.BigEndian.PutUint32(b[8:], rb.ExtHighestSeq)
	binary.BigEndian.PutUint32(b[12:], rb.Jitter)
	binary.BigEndian.PutUint32(b[16:], rb.LSR)
	binary.BigEndian.PutUint32(b[20:], rb.DLSR)
}

// BuildRR writes a Receiver Report (RFC 3550 §6.4.2) from senderSSRC with
// up to MaxReports blocks into dst and returns its length; ok is false when
// dst is too small or there are too many blocks. With no blocks it is the
// empty RR that starts a compound packet.
func BuildRR(dst []byte, senderSSRC uint32, reports ...ReportBlock) (int, bool) {
	size := 8 + 24*len(reports)
	if len(reports) > MaxReports || len(dst) < size {
		return 0, false
	}
	putHeader(dst, uint8(len(reports)), TypeRR, size)
	binary.BigEndian.PutUint32(dst[4:], senderSSRC)
	for i, rb := range reports {
		putBlock(dst[8+24*i:], rb)
	}
	return size, true
}

// BuildSR writes a Sender Report (RFC 3550 §6.4.1) into dst and returns its
// length; ok is false when dst is too small or there are too many blocks.
func BuildSR(dst []byte, si SenderInfo, reports ...ReportBlock) (int, bool) {
	size := 28 + 24*len(reports)
	if len(reports) > MaxReports || len(dst) < size {
		return 0, false
	}
	putHeader(dst, uint8(len(reports)), TypeSR, size)
	binary.BigEndian.PutUint32(dst[4:], si.SSRC)
	binary.BigEndian.PutUint64(dst[8:], si.NTP)
	binary.BigEndian.PutUint32(dst[16:], si.RTPTime)
	binary.BigEndian.PutUint32(dst[20:], si.Packets)
	binary.BigEndian.PutUint32(dst[24:], si.Octets)
	for i, rb := range reports {
		putBlock(dst[28+24*i:], rb)
	}
	return size, true
}

// TranslateSR writes the Sender Report a player gets for a forwarded track
// (RFC 3550 §6.4.1): the publisher's last SR src (for clockRate) moved
// forward to now along the nominal clock, so NTP and RTP time describe the
// same instant and that instant is now; the RTP time shifted by the player's
// tsOffset (its timestamp rewrite), the player's SSRC, and the packet and
// octet counts of what Fanout sent that player. Audio and video SRs of one
// publisher share its NTP clock, so the browser keeps lip sync. It returns
// the length and the NTP timestamp written (record it in an RTTLog: the
// player's RR echoes it as LSR).
func TranslateSR(dst []byte, src SRSource, clockRate uint32, now int64, ssrc, tsOffset, packets, octets uint32) (n int, ntp uint64, ok bool) {
	elapsed := max(now-src.At, 0)
	ntp = src.NTP + NTPDuration(elapsed)
	rtpTime := src.RTPTime + uint32(elapsed*int64(clockRate)/1e9) + tsOffset
	n, ok = BuildSR(dst, SenderInfo{SSRC: ssrc, NTP: ntp, RTPTime: rtpTime, Packets: packets, Octets: octets})
	return n, ntp, ok
}

// BuildRRTR writes an XR packet (RFC 3611 §2) from senderSSRC carrying one
// Receiver Reference Time block (§4.4) with ntp, 20 bytes. A publisher that
// negotiated XR answers with a DLRR block, which gives Fanout its RTT.
func BuildRRTR(dst []byte, senderSSRC uint32, ntp uint64) (int, bool) {
	if len(dst) < 20 {
		return 0, false
	}
	putHeader(dst, 0, TypeXR, 20)
	binary.BigEndian.PutUint32(dst[4:], senderSSRC)
	dst[8], dst[9] = BlockRRTR, 0
	binary.BigEndian.PutUint16(dst[10:], 2) // block length in words - 1
	binary.BigEndian.PutUint64(dst[12:], ntp)
	return 20, true
}

// RTTLog remembers the last few NTP timestamps Fanout sent (in SRs to a
// player or RRTRs to a publisher) and when, so an echo (LSR+DLSR in a
// report block, LRR+DLRR in a DLRR block) gives the round-trip time without
// relying on either side's wall clock: RTT = now - sent - delay (RFC 3550
// §6.4.1, RFC 3611 §4.5). The zero value is ready.
type RTTLog struct {
	mid   [8]uint32
	at    [8]int64
	valid uint8 // bit i: entry i is set
	next  uint8
}

// Sent records that a report carrying ntp left at now.
func (l *RTTLog) Sent(ntp uint64, now int64) {
	i := l.next & 7
	l.mid[i], l.at[i] = NTPMiddle(ntp), now
	l.valid |= 1 << i
	l.next++
}

// RTT computes the round-trip time in ns from an echoed middle-32 NTP value
// (LSR or LRR) and the peer's delay since it (DLSR or DLRR, 1/65536 s),
// received at now. ok is false for an unknown or zero echo or a negative
// result.
func (l *RTTLog) RTT(echo, delay uint32, now int64) (int64, bool) {
	if echo == 0 {
		return 0, false
	}
	for i := range l.mid {
		if l.mid[i] == echo && l.valid&(1<<i) != 0 {
			rtt := now - l.at[i] - int64(delay)*1e9/65536
			return rtt, rtt >= 0
		}
	}
	return 0, false
}
