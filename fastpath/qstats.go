package fastpath

import (
	"sync"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

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
// them once a second; Engine.SessionQuality reads them from any goroutine.
type SessionQuality struct {
	ID     route.SessionID              `json:"-"`
	Epoch  uint32                       `json:"-"`
	Role   route.Role                   `json:"-"`
	Tracks [route.NumKinds]TrackQuality `json:"tracks"` // audio, video
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
}

// qualityBoard is a core's published SessionQuality per session slot. The
// core only TryLocks it (once a second) and skips a publish rather than
// wait; readers hold the lock for a copy.
type qualityBoard struct {
	mu sync.Mutex
	s  []SessionQuality
}

// SessionQuality returns the last published counters of session id.
func (e *Engine) SessionQuality(id route.SessionID) (SessionQuality, bool) {
	s := e.table.Load().Session(id)
	if s == nil {
		return SessionQuality{}, false
	}
	c := e.cores[e.ownerOf(s)]
	c.qb.mu.Lock()
	defer c.qb.mu.Unlock()
	if int(id) >= len(c.qb.s) || c.qb.s[id].ID != id || c.qb.s[id].Epoch != s.Epoch {
		return SessionQuality{}, false
	}
	return c.qb.s[id], true
}

// publishQuality copies the counters of the sessions this core owns to its
// board (growing it only when the table grew).
func (c *core) publishQuality() {
	if !c.qb.mu.TryLock() {
		return
	}
	defer c.qb.mu.Unlock()
	if len(c.qb.s) < len(c.sess) {
		c.qb.s = append(c.qb.s, make([]SessionQuality, len(c.sess)-len(c.qb.s))...)
	}
	for _, pid := range c.pubs {
		if st := &c.sess[pid]; st.pub != nil {
			c.qb.s[pid] = st.pub.quality(st, c.tbl.Session(pid))
		}
	}
	for _, pid := range c.players {
		st := &c.sess[pid]
		c.qb.s[pid] = st.pq.quality(st)
	}
}

func (q *pubState) quality(st *sessState, s *route.Session) SessionQuality {
	out := SessionQuality{ID: st.id, Epoch: st.epoch, Role: route.RolePublisher, RTT: time.Duration(q.rtt),
		NACKs: q.nacks, PLIs: st.plisSent, TWCCFeedbacks: q.twccSent}
	for k := range out.Tracks {
		t := &out.Tracks[k]
		t.Packets, t.Bytes = q.packets[k], q.bytes[k]
		if s != nil && s.Tracks[k].SSRC != 0 && q.packets[k] != 0 {
			t.Lost, t.Jitter = q.rs[k].Lost(), q.rs[k].Jitter()
			t.FractionLost = q.lastFraction[k]
		}
		t.Recovered, t.GivenUp = q.rx[k].Stats.Recovered, q.rx[k].Stats.GivenUp
	}
	return out
}

func (pq *playerQ) quality(st *sessState) SessionQuality {
	out := SessionQuality{ID: st.id, Epoch: st.epoch, Role: route.RolePlayer, RTT: time.Duration(pq.rtt),
		NACKs: pq.nacks, NACKServed: pq.served, NACKMissed: pq.missed, PLIs: pq.plis,
		ReplayedPackets: pq.replay}
	for k := range out.Tracks {
		t := &out.Tracks[k]
		t.Packets, t.Bytes = uint64(st.out[k].packets), uint64(st.out[k].octets)
		t.Lost, t.FractionLost, t.Jitter = int64(pq.rr[k].TotalLost), pq.rr[k].FractionLost, pq.rr[k].Jitter
	}
	return out
}
