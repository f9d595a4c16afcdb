package fastpath

import "sync/atomic"

// Drop reasons. Every datagram the fastpath does not forward or hand up is
// counted under exactly one of them.
const (
	DropGarbage       uint8 = iota // first byte matches no RFC 7983 range
	DropUnknownPeer                // DTLS/RTP/RTCP from an address without a STUN binding
	DropNotReady                   // media before the DTLS handshake finished
	DropSRTP                       // SRTP/SRTCP authentication or replay failure
	DropUnknownSSRC                // RTP whose SSRC the publisher did not announce
	DropPayloadType                // RTP with a payload type that is not forwarded (RED, RTX…)
	DropWrongRole                  // RTP from a player
	DropUpcallFull                 // control's ring was full
	DropSendFailed                 // the kernel refused a sendmmsg message
	DropRTCPMalformed              // decrypted RTCP that does not parse
	DropRingFull                   // another core's ring was full (fan-out, hand-off or keyframe request)
	DropNoBuffer                   // the core's packet slab was exhausted
	numDropReasons
)

// DropReasonNames names the reasons for metrics and logs.
var DropReasonNames = [numDropReasons]string{
	"garbage", "unknown_peer", "not_ready", "srtp", "unknown_ssrc", "payload_type",
	"wrong_role", "upcall_full", "send_failed", "rtcp_malformed", "ring_full", "no_buffer",
}

// NumDropReasons is the number of drop reasons.
const NumDropReasons = int(numDropReasons)

// counters are written by one core and read by anyone.
type counters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	batches            atomic.Uint64
	rtcpIn             atomic.Uint64
	pliIn, firIn       atomic.Uint64
	nackIn             atomic.Uint64
	pliOut             atomic.Uint64
	rtcpOut            atomic.Uint64 // RTCP packets Fanout generated (NACK, TWCC, RR+XR, SR, …) except PLIs
	nackOut            atomic.Uint64 // generic NACK packets sent to publishers
	nackServed         atomic.Uint64 // packets resent to players from the history
	nackMissed         atomic.Uint64 // player NACKs for packets the history no longer (or never) had
	twccOut            atomic.Uint64 // transport-wide feedback packets sent to publishers
	twccIn             atomic.Uint64 // transport-wide feedback packets from players, read by their estimator (playerbwe.go)
	paddingDrops       atomic.Uint64 // padding-only simulcast packets not forwarded to a player (padding.go)
	rrOut              atomic.Uint64 // RR + XR RRTR compounds sent to publishers
	srOut              atomic.Uint64 // sender reports sent to players
	gopReplays         atomic.Uint64 // joining players started from the GOP cache
	gopSkipped         atomic.Uint64 // cross-core GOP replays given up: the ring or slab stayed without headroom (replayfar.go)
	layersLearnt       atomic.Uint64 // simulcast layer SSRCs learnt from their RID (layers.go)
	layerSwitches      atomic.Uint64 // players moved to another simulcast layer at a keyframe
	temporalDrops      atomic.Uint64 // VP9/AV1 packets above a player's temporal layer cap, not sent (svc.go)
	ddInvalid          atomic.Uint64 // AV1 dependency descriptors not parsed (no structure yet, malformed): sent to every player
	gopReplayed        atomic.Uint64 // packets replayed from the GOP cache
	gopTooOld          atomic.Uint64 // GOP replays refused: older or larger than the bound
	gopFallbacks       atomic.Uint64 // too-old GOPs replayed after a join's keyframe request went unanswered
	gopPaced           atomic.Uint64 // times a paced GOP replay waited for tokens (pace.go)
	gopFirstRepeats    atomic.Uint64 // first packets of a GOP replay sent twice (pace.go replayedOne)
	resendSuppressed   atomic.Uint64 // NACKed packets not resent: resent to that player within one RTT
	resendPaced        atomic.Uint64 // NACKed packets not resent: over the player's resend budget, or the ring's headroom
	resendForced       atomic.Uint64 // resends of a layer switch's keyframe, outside the budget
	ringOverflows      atomic.Uint64 // messages a full ring refused (also counted as DropRingFull)
	ringIn             atomic.Uint64 // messages taken from other cores' rings
	handoffs           atomic.Uint64 // datagrams passed to their owning core
	gsoSends           atomic.Uint64 // sendmmsg entries that carried a UDP_SEGMENT run
	gsoSegments        atomic.Uint64 // datagrams sent inside those runs
	wakeups            atomic.Uint64 // eventfd wakes this core sent to sleeping peers
	sleeps             atomic.Uint64 // times this core blocked with nothing to do
	frameWaitExpired   atomic.Uint64 // awaitFrame gave up before a frame's marker arrived
	stunAnswered       atomic.Uint64 // consent refreshes answered on the core (answerSTUN)
	stunIndications    atomic.Uint64 // binding indications taken as keepalives (keepalive)
	drops              [numDropReasons]atomic.Uint64
}

// Stats is a snapshot of a core's counters.
type Stats struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	Batches            uint64
	RTCPIn             uint64
	PLIIn, FIRIn       uint64
	NACKIn             uint64
	PLIOut             uint64
	RTCPOut            uint64
	NACKOut            uint64
	NACKServed         uint64
	NACKMissed         uint64
	TWCCOut            uint64
	TWCCIn             uint64 // players' transport-wide feedback read by their estimators
	PaddingDrops       uint64 // padding-only simulcast packets not forwarded to a player
	RROut              uint64
	SROut              uint64
	GOPReplays         uint64
	GOPSkipped         uint64 // cross-core GOP replays given up: no ring or slab headroom for farStall
	LayersLearnt       uint64
	LayerSwitches      uint64
	TemporalDrops      uint64
	DDInvalid          uint64 // AV1 dependency descriptors not parsed, their packets sent uncapped (svcav1.go)
	GOPReplayed        uint64 // packets replayed from the GOP cache
	GOPTooOld          uint64 // GOP replays refused: older or larger than the bound
	GOPFallbacks       uint64 // too-old GOPs replayed after a join's keyframe request went unanswered
	GOPPaced           uint64 // times a paced GOP replay waited for the next tick
	GOPFirstRepeats    uint64 // first packets of a GOP replay sent twice
	ResendSuppressed   uint64 // NACKed packets not resent: resent to that player within one RTT
	ResendPaced        uint64 // NACKed packets not resent: over the player's resend budget, or the ring's headroom
	ResendForced       uint64 // resends of a layer switch's keyframe, outside the budget
	RingOverflows      uint64
	RingIn             uint64
	Handoffs           uint64
	GSOSends           uint64
	GSOSegments        uint64
	Wakeups            uint64
	Sleeps             uint64
	FrameWaitExpired   uint64
	STUNAnswered       uint64 // consent refreshes answered on the core
	STUNIndications    uint64 // binding indications from a session's address taken as keepalives
	Drops              [NumDropReasons]uint64
	// Core and CPU identify the loop in CoreStats (zero in totals);
	// Thread is its OS thread id once it runs (its CPU time is
	// /proc/self/task/THREAD/stat).
	Core, CPU, Thread int
}

func (c *counters) snapshot() Stats {
	s := Stats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		Batches: c.batches.Load(), RTCPIn: c.rtcpIn.Load(),
		PLIIn: c.pliIn.Load(), FIRIn: c.firIn.Load(), NACKIn: c.nackIn.Load(), PLIOut: c.pliOut.Load(),
		RTCPOut: c.rtcpOut.Load(), NACKOut: c.nackOut.Load(), NACKServed: c.nackServed.Load(),
		NACKMissed: c.nackMissed.Load(), TWCCOut: c.twccOut.Load(), TWCCIn: c.twccIn.Load(), PaddingDrops: c.paddingDrops.Load(), RROut: c.rrOut.Load(),
		SROut: c.srOut.Load(), GOPReplays: c.gopReplays.Load(), GOPSkipped: c.gopSkipped.Load(),
		LayersLearnt: c.layersLearnt.Load(), LayerSwitches: c.layerSwitches.Load(),
		TemporalDrops: c.temporalDrops.Load(), DDInvalid: c.ddInvalid.Load(),
		GOPReplayed: c.gopReplayed.Load(), GOPTooOld: c.gopTooOld.Load(), GOPFallbacks: c.gopFallbacks.Load(), GOPPaced: c.gopPaced.Load(),
		GOPFirstRepeats:  c.gopFirstRepeats.Load(),
		ResendSuppressed: c.resendSuppressed.Load(), ResendPaced: c.resendPaced.Load(),
		ResendForced:  c.resendForced.Load(),
		RingOverflows: c.ringOverflows.Load(), RingIn: c.ringIn.Load(), Handoffs: c.handoffs.Load(),
		GSOSends: c.gsoSends.Load(), GSOSegments: c.gsoSegments.Load(),
		Wakeups: c.wakeups.Load(), Sleeps: c.sleeps.Load(), FrameWaitExpired: c.frameWaitExpired.Load(),
		STUNAnswered: c.stunAnswered.Load(), STUNIndications: c.stunIndications.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}

// Add sums o into s (for totals across cores).
func (s *Stats) Add(o Stats) {
	s.RxPackets += o.RxPackets
	s.RxBytes += o.RxBytes
	s.TxPackets += o.TxPackets
	s.TxBytes += o.TxBytes
	s.Batches += o.Batches
	s.RTCPIn += o.RTCPIn
	s.PLIIn += o.PLIIn
	s.FIRIn += o.FIRIn
	s.NACKIn += o.NACKIn
	s.PLIOut += o.PLIOut
	s.RTCPOut += o.RTCPOut
	s.NACKOut += o.NACKOut
	s.NACKServed += o.NACKServed
	s.NACKMissed += o.NACKMissed
	s.TWCCOut += o.TWCCOut
	s.TWCCIn += o.TWCCIn
	s.PaddingDrops += o.PaddingDrops
	s.RROut += o.RROut
	s.SROut += o.SROut
	s.GOPReplays += o.GOPReplays
	s.GOPSkipped += o.GOPSkipped
	s.LayersLearnt += o.LayersLearnt
	s.LayerSwitches += o.LayerSwitches
	s.TemporalDrops += o.TemporalDrops
	s.DDInvalid += o.DDInvalid
	s.GOPReplayed += o.GOPReplayed
	s.GOPTooOld += o.GOPTooOld
	s.GOPFallbacks += o.GOPFallbacks
	s.GOPPaced += o.GOPPaced
	s.GOPFirstRepeats += o.GOPFirstRepeats
	s.ResendSuppressed += o.ResendSuppressed
	s.ResendPaced += o.ResendPaced
	s.ResendForced += o.ResendForced
	s.RingOverflows += o.RingOverflows
	s.RingIn += o.RingIn
	s.Handoffs += o.Handoffs
	s.GSOSends += o.GSOSends
	s.GSOSegments += o.GSOSegments
	s.Wakeups += o.Wakeups
	s.Sleeps += o.Sleeps
	s.FrameWaitExpired += o.FrameWaitExpired
	s.STUNAnswered += o.STUNAnswered
	s.STUNIndications += o.STUNIndications
	for i := range s.Drops {
		s.Drops[i] += o.Drops[i]
	}
}

// DropTotal is the sum of all drop reasons.
func (s *Stats) DropTotal() uint64 {
	var n uint64
	for _, d := range s.Drops {
		n += d
	}
	return n
}
