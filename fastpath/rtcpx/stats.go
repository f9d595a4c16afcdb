package rtcpx

// RFC 3550 Appendix A.1 constants. MAX_MISORDER is 1000 rather than the
// example's 100: NACK repairs arrive up to a second late, hundreds of
// packets behind a video stream's head, and must count as received so the
// cumulative loss reported is what stayed lost after repair.
const (
	maxDropout  = 3000
	maxMisorder = 1000
)

// SRSource is the last Sender Report received from a publisher for one
// SSRC: its NTP and RTP timestamps and when (ns) it arrived.
type SRSource struct {
	NTP     uint64
	RTPTime uint32
	At      int64
}

// ReceiveStats keeps RFC 3550 reception statistics for one publisher SSRC:
// the extended highest sequence number and cycle count (A.1), expected and
// lost packets with the per-interval fraction (A.3), interarrival jitter in
// RTP timestamp units (A.8) and the last SR for LSR/DLSR (§6.4.1).
// Call Init first.
type ReceiveStats struct {
	ssrc      uint32
	clockRate int64
	started   bool
	maxSeq    uint16
	cycles    uint32 // shifted count of seq number cycles
	baseSeq   uint32
	badSeq    uint32 // RTP_SEQ_MOD + 1 when none
	received  uint32
	expPrior  uint32
	recPrior  uint32
	// jitter, RFC 3550 A.8 (scaled by 16)
	jitter    uint32
	lastTS    uint32
	lastAt    int64
	sr        SRSource
	haveSR    bool
	haveTimes bool
}

// Init starts statistics for ssrc with the codec's RTP clock rate (90000
// for video, 48000 for Opus), dropping previous state.
func (s *ReceiveStats) Init(ssrc, clockRate uint32) {
	*s = ReceiveStats{ssrc: ssrc, clockRate: int64(clockRate)}
}

// SSRC is the source the statistics are about.
func (s *ReceiveStats) SSRC() uint32 { return s.ssrc }

// Update records a packet with sequence number seq and RTP timestamp rtpTS
// that arrived at now (ns). Every packet of the SSRC counts, retransmissions
// included (RFC 3550 §6.4.1 counts late and duplicate packets as received);
// jitter is only updated by packets that advance the highest sequence number,
// as libwebrtc does, so retransmissions and reordering do not inflate it.
func (s *ReceiveStats) Update(seq uint16, rtpTS uint32, now int64) {
	if !s.started {
		s.initSeq(seq)
		s.started, s.received = true, 1
		s.noteTimes(rtpTS, now, false)
		return
	}
	udelta := seq - s.maxSeq
	switch {
	case udelta == 0:
		s.received++ // duplicate
	case udelta < maxDropout: // in order, with permissible gap
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
		s.received++
		s.noteTimes(rtpTS, now, true)
	case udelta <= 65535-maxMisorder: // the sequence number made a very large jump
		if uint32(seq) == s.badSeq {
			// Two sequential packets: the source restarted without telling us.
			s.initSeq(seq)
			s.received = 1
			s.haveTimes = false
			s.noteTimes(rtpTS, now, false)
			return
		}
		s.badSeq = uint32(seq+1) & 0xffff
	default: // duplicate or reordered packet
		s.received++
	}
}

func (s *ReceiveStats) initSeq(seq uint16) {
	s.baseSeq, s.maxSeq, s.badSeq, s.cycles = uint32(seq), seq, 1<<16+1, 0
	s.expPrior, s.recPrior = 0, 0
}

// noteTimes updates the jitter estimate (RFC 3550 §6.4.1 and A.8):
// D = (Rj - Ri) - (Sj - Si) in RTP units, J += (|D| - J) / 16.
func (s *ReceiveStats) noteTimes(rtpTS uint32, now int64, update bool) {
	if update && s.haveTimes && s.clockRate > 0 {
		arrival := (now - s.lastAt) * s.clockRate / 1e9
		d := arrival - int64(int32(rtpTS-s.lastTS))
		if d < 0 {
			d = -d
		}
		if d > 1<<28 { // a timestamp jump, not jitter
			d = int64(s.jitter >> 4)
		}
		s.jitter += uint32(d) - ((s.jitter + 8) >> 4)
	}
	s.lastTS, s.lastAt, s.haveTimes = rtpTS, now, true
}

// Jitter is the current interarrival jitter in RTP timestamp units.
func (s *ReceiveStats) Jitter() uint32 { return s.jitter >> 4 }

// ExtHighestSeq is the extended highest sequence number received.
func (s *ReceiveStats) ExtHighestSeq() uint32 { return s.cycles + uint32(s.maxSeq) }

// Lost is the cumulative number of packets lost (expected - received; it
// may be negative with duplicates, RFC 3550 §6.4.1).
func (s *ReceiveStats) Lost() int64 {
	if !s.started {
		return 0
	}
	expected := int64(s.ExtHighestSeq()) - int64(s.baseSeq) + 1
	return expected - int64(s.received)
}

// OnSR records a Sender Report of this SSRC received at now: its NTP and RTP
// timestamps become LSR for the next report, and the source for SRs
// translated to players.
func (s *ReceiveStats) OnSR(ntp uint64, rtpTS uint32, now int64) {
	s.sr, s.haveSR = SRSource{NTP: ntp, RTPTime: rtpTS, At: now}, true
}

// LastSR returns the last SR received.
func (s *ReceiveStats) LastSR() (SRSource, bool) { return s.sr, s.haveSR }

// Report returns the reception report block for this SSRC at now and starts
// a new interval for the fraction lost (RFC 3550 A.3).
func (s *ReceiveStats) Report(now int64) ReportBlock {
	rb := ReportBlock{SSRC: s.ssrc, Jitter: s.Jitter()}
	if !s.started {
		return rb
	}
	ext := s.ExtHighestSeq()
	expected := ext - s.baseSeq + 1
	lost := s.Lost()
	rb.ExtHighestSeq = ext
	rb.TotalLost = int32(min(max(lost, -0x800000), 0x7fffff)) // 24-bit signed, clamped
	expInterval := expected - s.expPrior
	recInterval := s.received - s.recPrior
	s.expPrior, s.recPrior = expected, s.received
	if lostInterval := int64(expInterval) - int64(recInterval); expInterval != 0 && lostInterval > 0 {
		rb.FractionLost = uint8(min(lostInterval<<8/int64(expInterval), 255))
	}
	if s.haveSR {
		rb.LSR = uint32(s.sr.NTP >> 16)
		rb.DLSR = uint32(max(now-s.sr.At, 0) * 65536 / 1e9) // units of 1/65536 s
	}
	return rb
}
