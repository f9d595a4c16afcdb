package fastpath

import (
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// Automatic layer choice from the player's Receiver Reports (RFC 3550
// §6.4.2 fraction lost), for players that pinned no layer
// (route.Session.LayerAuto): what the issue calls the RR-loss fallback of a
// bandwidth estimator. The levels it moves through are a simulcast
// publisher's layers, or a VP9 publisher's temporal layers (svc.go: level
// n drops the n highest of maxAutoTemporal). A report with heavy loss moves the player one layer
// down at once (at most one step per autoDownGap, so each step's effect is
// seen); a player that stays nearly loss-free for upWait tries one layer up.
// A step up that is followed by loss within twice upWait doubles upWait (up
// to autoMaxWait): a link that cannot carry the layer above stops being
// probed often, so the player does not flap.
const (
	autoLossDown  = 26 // > 10 % lost (in 1/256): congested, go down
	autoLossClean = 5  // < 2 % lost: this layer fits
	autoDownGap   = 900 * time.Millisecond
	autoFirstWait = 5 * time.Second
	autoMaxWait   = 60 * time.Second
)

// layerAuto is a player's automatic cap on its layer.
type layerAuto struct {
	floor    uint8 // the highest layer allowed now (0 = the top)
	lastMove int64 // ns, the last step up or down
	lastUp   int64
	lastDown int64 // the last step down (the estimator's, playerbwe.go)
	cleanAt  int64 // since when its reports have been clean; 0 = not clean
	lastRR   int64 // when the report before this one came
	upWait   int64 // ns of clean reports before a step up
	downs    uint64
	ups      uint64
}

// adaptLayer takes one video report block's fraction lost of player s.
func (c *core) adaptLayer(s *route.Session, st *sessState, lost uint8) {
	a := &st.lay.auto
	if !s.LayerAuto {
		return
	}
	levels := c.autoLevels(st)
	if levels < 2 {
		return
	}
	if a.upWait == 0 {
		a.upWait = int64(autoFirstWait)
	}
	// A report's fraction lost covers the time since the previous report
	// (RFC 3550 §6.4.1): a clean one dates the clean period from there.
	since := c.now
	if a.lastRR != 0 && c.now-a.lastRR < int64(autoDownGap)*3 {
		since = a.lastRR
	}
	a.lastRR = c.now
	switch {
	case lost > autoLossDown:
		a.cleanAt = 0
		if a.floor+1 >= levels || a.lastMove != 0 && c.now-a.lastMove < int64(autoDownGap) {
			return
		}
		if a.lastUp != 0 && c.now-a.lastUp < 2*a.upWait {
			a.upWait = min(2*a.upWait, int64(autoMaxWait)) // the step up did not fit
		}
		a.floor++
		a.lastMove = c.now
		a.downs++
	case lost < autoLossClean:
		if a.cleanAt == 0 {
			a.cleanAt = since
		}
		if a.floor > 0 && c.now-a.cleanAt >= a.upWait && c.now-a.lastMove >= a.upWait {
			a.floor--
			a.lastMove, a.lastUp, a.cleanAt = c.now, c.now, c.now
			a.ups++
		}
	default:
		a.cleanAt = 0
	}
}

// wantLayer is the layer player ps should follow of a publisher with
// layers layers: the one it asked for, capped by its automatic floor.
func wantLayer(ps *route.Session, ls *layerSel, layers uint8) uint8 {
	w := ps.Layer
	if ps.LayerAuto {
		w = max(w, ls.auto.floor)
	}
	return min(w, layers-1)
}

// maxAutoTemporal is how many temporal layers the estimator assumes a VP9
// stream has (L1T3, what browsers send): its lowest level keeps TID 0.
const maxAutoTemporal = 3

// autoLevels is how many levels the player's current video source offers
// the estimator: its simulcast layers, a VP9 stream's temporal layers, or
// none.
func (c *core) autoLevels(st *sessState) uint8 {
	ot := &st.out[route.KindVideo]
	if !ot.started {
		return 0
	}
	pub := c.tbl.Session(ot.src)
	switch {
	case pub == nil || pub.Epoch != ot.srcEpoch:
		return 0
	case pub.Simulcast.N >= 2:
		return pub.Simulcast.N
	case temporalScalable(pub):
		return maxAutoTemporal
	}
	return 0
}
