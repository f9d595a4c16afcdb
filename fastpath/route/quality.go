package route

import "time"

// TrackQuality is one track of a session, as its core last published it.
type TrackQuality struct {
	// Packets and Bytes: received from a publisher, sent to a player.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Lost is the cumulative number of packets lost (RFC 3550 §6.4.1): for
	// a publisher what Fanout's RR reports (after NACK repair), for a player
	// what its own RR says. FractionLost is the last interval's, in 1/256.
	Lost         int64 `json:"lost"`
	FractionLost uint8 `json:"fraction_lost"`
	// Jitter is the interarrival jitter in RTP timestamp units.
	Jitter uint32 `json:"jitter"`
	// Recovered and GivenUp count publisher holes repaired by NACK and
	// abandoned (nack.ReceiverStats).
	Recovered uint64 `json:"nack_recovered"`
	GivenUp   uint64 `json:"nack_given_up"`
}

// SessionQuality is a session's media-quality counters. Its core refreshes
// them once a second; the engine's SessionQuality reads them from any
// goroutine.
type SessionQuality struct {
	ID     SessionID              `json:"-"`
	Epoch  uint32                 `json:"-"`
	Role   Role                   `json:"-"`
	Tracks [NumKinds]TrackQuality `json:"tracks"` // audio, video
	// RTT: to a publisher from XR DLRR answers to our RRTRs; to a player
	// from the LSR/DLSR of its RRs answering our SRs. 0 = not measured.
	RTT time.Duration `json:"rtt_ns"`
	// NACKs: sequence numbers requested from a publisher, or asked for by
	// a player. NACKServed/NACKMissed: a player's, resent from the history
	// or not found there.
	NACKs      uint64 `json:"nacks"`
	NACKServed uint64 `json:"nack_served"`
	NACKMissed uint64 `json:"nack_missed"`
	// PLIs: keyframe requests sent to a publisher, or PLIs/FIRs received
	// from a player.
	PLIs uint64 `json:"plis"`
	// TWCCFeedbacks sent to a publisher; ReplayedPackets of the GOP cache
	// sent to a player when it joined.
	TWCCFeedbacks   uint64 `json:"twcc_feedbacks"`
	ReplayedPackets uint64 `json:"gop_replayed_packets"`
	// JoinGOPPackets and JoinGOPBytes: of a player's replayed packets,
	// those of the GOP cached when it joined, which keyframe_replay_age
	// and keyframe_replay_bytes bound (a paced replay also sends the live
	// packets that arrive until it has caught up).
	JoinGOPPackets uint64 `json:"gop_join_packets"`
	JoinGOPBytes   uint64 `json:"gop_join_bytes"`
	// Simulcast: a player's video comes from a simulcast publisher; Layer
	// is the layer it follows now (0 = highest; route.MaxLayers or more
	// before its first keyframe) and LayerSwitches how often it moved.
	Simulcast     bool   `json:"-"`
	Layer         uint8  `json:"-"`
	LayerSwitches uint64 `json:"-"`
	// LayerCap is the highest layer a player's loss allows now (when its
	// layer is automatic), LayerDowns and LayerUps the steps it took.
	LayerCap             uint8  `json:"-"`
	LayerDowns, LayerUps uint64 `json:"-"`
	// Estimate is a player's bandwidth estimate in bps from its
	// transport-wide feedback (fastpath/bwe); 0 when it negotiated no
	// transport-cc or sent no feedback yet.
	Estimate uint64 `json:"estimate_bps,omitempty"`
}
