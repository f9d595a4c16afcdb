package fastpath

import (
	"github.com/fanout/fanout/fastpath/gop"
	"github.com/fanout/fanout/fastpath/route"
)

// The GOP replay to a player of another core (issue 15) is walked on the
// publisher's core, which owns the cache, by the same cursor as a local
// one (pace.go): the first burst as soon as the player's core asks
// (opGOP), then replayRateFactor times the stream's rate every quality
// tick (nackPeriod), each packet a slab copy pushed as opReplay to the
// player's core, which rewrites and sends it (player.go onPlayerMsg) and
// holds the player's live video until opReplayEnd. The live packets are
// cached too, so the cursor reaches them, and opReplayEnd goes once it has
// caught up: the ring's order is the cut, and every opFanout after it is
// live for the player. A chunk never takes the last half of the ring or
// of the slab, which the live fan-out shares: the cursor waits for the next
// tick instead (gop_replay_paced), and gives the replay up after farStall
// without progress (gop_replays_skipped; the player's core then goes live).
//
// A player that joined a GOP too old to replay waits here too, as a local
// one does (pace.go heldForKeyframe, joinFallback): its live video stays
// held until the keyframe its join asked for starts its cursor, or, after
// joinKeyframeWait without one, the old GOP is replayed after all.

// farStall is how long a replay to another core may make no progress
// (the ring stayed without headroom) before it is given up; less than the
// player's core waits (joinTimeout).
const farStall = joinTimeout / 4

type farState uint8

const (
	farIdle   farState = iota
	farWait            // the GOP was too old: waiting for a keyframe, or joinKeyframeWait
	farPacing          // the cursor is walking the cache
	farEnding          // opReplayEnd is still to be pushed (the ring was full)
)

// farReplay is, on a publisher's core, the GOP replay to one player of
// another core (kept in the player's slot of the publisher's core).
type farReplay struct {
	state  farState
	listed bool // in core.far
	to     int  // the player's core
	cur    replayCursor
	kfGen  uint64 // farWait: the cache generation the player joined
	since  int64  // farWait: when it began; farPacing: the last packet pushed
}

// onGOPRequest starts the replay of the GOP of a publisher this core owns
// to player, of core from: paced from now on, or once a keyframe (or
// joinKeyframeWait) has come when the GOP is too old; with nothing to
// replay, the player's wait ends at once.
func (c *core) onGOPRequest(from int, player route.SessionID) {
	if t := c.e.table.Load(); t != c.tbl {
		c.sync(t) // the table that added the player may be newer than this round's
	}
	ps := c.tbl.Session(player)
	var pub *route.Session
	if ps != nil {
		pub = c.publisherOf(c.tbl, ps.Stream)
	}
	if pub == nil || c.e.ownerOf(pub) != c.id || c.sess[pub.ID].pub == nil {
		c.push(from, msg{sid: player, op: opReplayEnd}) // if lost, the player's join times out
		return
	}
	f := &c.sess[player].far
	*f = farReplay{listed: f.listed, to: from}
	g, layer := c.sess[pub.ID].pub.gopFor(pub, ps.Layer)
	switch {
	case c.replayable(g):
		c.startFar(f, pub, g, layer, false)
	case c.fallbackable(g) && pub.Simulcast.N == 0:
		f.state, f.kfGen, f.since = farWait, g.Gen(), c.now
	default:
		f.state = farEnding
	}
	c.stepFar(player, f)
	if f.state != farIdle && !f.listed {
		f.listed = true
		c.far = append(c.far, player) // once per join, not per packet
	}
}

// tickFar moves every replay to another core's player along (runTimers).
func (c *core) tickFar() {
	keep := c.far[:0]
	for _, pid := range c.far {
		f := &c.sess[pid].far
		c.stepFar(pid, f)
		if f.state == farIdle {
			f.listed = false
			continue
		}
		keep = append(keep, pid)
	}
	c.far = keep
}

// stepFar does what replay f to player pid is due now.
func (c *core) stepFar(pid route.SessionID, f *farReplay) {
	switch f.state {
	case farWait:
		c.farWaitTick(pid, f)
	case farPacing:
		c.paceFar(pid, f)
	}
	if f.state == farEnding && c.push(f.to, msg{sid: pid, op: opReplayEnd}) {
		f.state, f.cur.on = farIdle, false
	}
}

// startFar sets replay f's cursor at the start of GOP g (layer's).
func (c *core) startFar(f *farReplay, pub *route.Session, g *gop.Cache, layer uint8, live bool) {
	f.cur = c.newCursor(pub, g, layer, live)
	f.state, f.since = farPacing, c.now
}

// farWaitTick starts the replay to a player that joined a too-old GOP
// from the keyframe that came since, or from that GOP after
// joinKeyframeWait (pace.go joinFallback's rule), or ends its wait.
func (c *core) farWaitTick(pid route.SessionID, f *farReplay) {
	ps := c.tbl.Session(pid)
	var pub *route.Session
	if ps != nil {
		pub = c.publisherOf(c.tbl, ps.Stream)
	}
	if pub == nil || c.e.ownerOf(pub) != c.id || c.sess[pub.ID].pub == nil {
		f.state = farEnding
		return
	}
	g, layer := c.sess[pub.ID].pub.gopFor(pub, ps.Layer)
	switch {
	case g != nil && g.Gen() != f.kfGen && c.fallbackable(g): // a keyframe came (it is in the cache already)
		c.startFar(f, pub, g, layer, true)
	case c.now-f.since <= int64(joinKeyframeWait):
		// Still waiting; a keyframe whose picture is not all in yet (the
		// cache not Ready) starts the player at the next tick.
	case g != nil && g.Gen() == f.kfGen && c.fallbackable(g):
		c.cnt.gopFallbacks.Add(1)
		c.startFar(f, pub, g, layer, false)
	default:
		f.state = farEnding // the cache overflowed: live now
	}
}

// paceFar pushes player pid's core what replay f's tokens and the ring's
// headroom allow, and ends the replay once the cursor has caught up.
func (c *core) paceFar(pid route.SessionID, f *farReplay) {
	r := &f.cur
	pub, g := c.cursorCache(r)
	if g == nil {
		f.state = farEnding
		return
	}
	n, _ := g.Len()
	rg := c.e.rings[c.id][f.to]
	for ; r.next < n; r.next++ {
		pkt := g.At(r.next)
		if int64(len(pkt)) > r.tokens {
			c.cnt.gopPaced.Add(1)
			return
		}
		if rg.free() <= len(rg.slots)/2+1 || len(c.slab.free) <= cap(c.slab.free)/2 {
			c.cnt.gopPaced.Add(1)
			if c.now-f.since > int64(farStall) {
				c.cnt.gopSkipped.Add(1)
				f.state = farEnding
			}
			return
		}
		p := c.getPkt()
		if p == nil {
			return
		}
		p.n = copy(p.buf[:], pkt)
		p.stream, p.src, p.srcEpoch, p.kind = pub.Stream, pub.ID, pub.Epoch, route.KindVideo
		p.layer, p.layers = r.layer, pub.Simulcast.N
		p.tid, p.tstart = c.temporalOf(pub, r.layer, p.data())
		if !c.push(f.to, msg{p: p, sid: pid, op: opReplay, cached: r.next < r.end}) {
			c.release(p)
			return
		}
		r.tokens -= int64(len(pkt))
		f.since = c.now
		c.cnt.gopReplayed.Add(1)
	}
	f.state = farEnding
}
