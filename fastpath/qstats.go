package fastpath

import (
	"sync"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// qualityBoard is a core's published route.SessionQuality per session slot. The
// core only TryLocks it (once a second) and skips a publish rather than
// wait; readers hold the lock for a copy.
type qualityBoard struct {
	mu sync.Mutex
	s  []route.SessionQuality
}

// SessionQuality returns the last published counters of session id.
func (e *Engine) SessionQuality(id route.SessionID) (route.SessionQuality, bool) {
	s := e.table.Load().Session(id)
	if s == nil {
		return route.SessionQuality{}, false
	}
	c := e.cores[e.ownerOf(s)]
	c.qb.mu.Lock()
	defer c.qb.mu.Unlock()
	if int(id) >= len(c.qb.s) || c.qb.s[id].ID != id || c.qb.s[id].Epoch != s.Epoch {
		return route.SessionQuality{}, false
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
		c.qb.s = append(c.qb.s, make([]route.SessionQuality, len(c.sess)-len(c.qb.s))...)
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

func (q *pubState) quality(st *sessState, s *route.Session) route.SessionQuality {
	out := route.SessionQuality{ID: st.id, Epoch: st.epoch, Role: route.RolePublisher, RTT: time.Duration(q.rtt),
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
	if q.sim != nil { // simulcast video: the layers' sum
		t := &out.Tracks[route.KindVideo]
		for l := range q.sim.ssrc {
			t.Packets += q.sim.packets[l]
			t.Bytes += q.sim.bytes[l]
			t.Recovered += q.sim.rx[l].Stats.Recovered
			t.GivenUp += q.sim.rx[l].Stats.GivenUp
		}
	}
	return out
}

func (pq *playerQ) quality(st *sessState) route.SessionQuality {
	out := route.SessionQuality{ID: st.id, Epoch: st.epoch, Role: route.RolePlayer, RTT: time.Duration(pq.rtt),
		NACKs: pq.nacks, NACKServed: pq.served, NACKMissed: pq.missed, PLIs: pq.plis,
		ReplayedPackets: pq.replay, JoinGOPPackets: pq.joinGOP, JoinGOPBytes: pq.joinGOPBytes, Simulcast: st.lay.src != 0, Layer: st.lay.cur, LayerSwitches: st.lay.switches,
		LayerCap: st.lay.auto.floor, LayerDowns: st.lay.auto.downs, LayerUps: st.lay.auto.ups,
		Estimate: pq.estimate()}
	for k := range out.Tracks {
		t := &out.Tracks[k]
		t.Packets, t.Bytes = uint64(st.out[k].packets), uint64(st.out[k].octets)
		t.Lost, t.FractionLost, t.Jitter = int64(pq.rr[k].TotalLost), pq.rr[k].FractionLost, pq.rr[k].Jitter
	}
	return out
}
