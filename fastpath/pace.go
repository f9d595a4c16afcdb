package fastpath

import (
	"time"

	"github.com/fanout/fanout/fastpath/gop"
	"github.com/fanout/fanout/fastpath/route"
)

// The GOP replay to a joining player is paced (issue 15: 603 packets
// replayed at once overflowed a 212 KB socket buffer, and the NACKs and
// resends that followed overflowed it again). A cursor walks the
// publisher's GOP cache: replayBurst at once (the keyframe, usually), then
// at replayRateFactor times the stream's rate as the cache measures it (its
// bytes over its age), once per tick. The player's live video waits
// meanwhile: every live packet is appended to the cache too, so the cursor
// reaches it, in order, and the player is live again once the cursor has
// caught up (after about a third of the GOP's age). For a player of the
// publisher's own core the cursor is in the player's state and sends
// itself (paceReplay); for a player of another core it lives on the
// publisher's core, the cache's owner, and hands the packets over the ring
// in paced chunks that keep half the ring and slab free (replayfar.go).

const (
	replayRateFactor = 4
	minReplayRate    = 256 << 10 // bytes/s
	replayBurst      = 64 << 10  // bytes sent at once at the join
)

// joinKeyframeWait is how long a player that joined a GOP too old to
// replay waits for the keyframe its join asked for before joinFallback
// replays that GOP anyway: a publisher that ignores PLIs (Debian aiortc's
// H.264 encoder) would otherwise leave it without a picture until its next
// keyframe, whenever that is.
const joinKeyframeWait = time.Second

// fallbackable reports whether GOP cache g holds a GOP within the bytes
// bound (whatever its age): what joinFallback may replay.
func (c *core) fallbackable(g *gop.Cache) bool {
	if g == nil || !g.Ready() {
		return false
	}
	_, bytes := g.Len()
	return c.e.cfg.ReplayMaxBytes <= 0 || bytes <= c.e.cfg.ReplayMaxBytes
}

// heldForKeyframe reports whether player s's live video from publisher src
// is held: it joined a GOP too old to replay and no keyframe has come since
// (the cache's generation is the one it joined). Deltas it could not decode
// are not sent, so that joinFallback's replay, if it comes to that, is the
// first video the player gets.
func (c *core) heldForKeyframe(s *route.Session, st *sessState, src route.SessionID) bool {
	if !st.pq.kfWait {
		return false
	}
	pub := c.tbl.Session(src)
	if pub == nil || c.sess[src].pub == nil {
		st.pq.kfWait = false
		return false
	}
	g, layer := c.sess[src].pub.gopFor(pub, s.Layer)
	if g != nil && g.Gen() == st.pq.kfGen {
		return true
	}
	// A keyframe came (it is in the cache already): start the player from
	// it through the cursor, which sends its first packet twice, as a
	// replay's (replayedOne: the first packet cannot be NACKed).
	st.pq.kfWait = false
	if !c.fallbackable(g) {
		return false
	}
	c.startReplay(s, st, pub, g, layer, true)
	return true
}

// joinFallback replays to player s the GOP it joined when it was too old,
// if no keyframe came since (the cache's generation is the same) and the
// GOP is within the bytes bound: stale video beats none. For a publisher
// of the player's own core; the publisher's core does the same for a
// player of another core (replayfar.go farWaitTick).
func (c *core) joinFallback(s *route.Session, st *sessState) {
	pub := c.publisherOf(c.tbl, s.Stream)
	if pub == nil || c.e.ownerOf(pub) != c.id || c.sess[pub.ID].pub == nil || st.pq.cur.on {
		return
	}
	g, layer := c.sess[pub.ID].pub.gopFor(pub, s.Layer)
	if g == nil || g.Gen() != st.pq.kfGen {
		return // a keyframe came: the player has it live
	}
	if !c.fallbackable(g) {
		return
	}
	c.cnt.gopFallbacks.Add(1)
	c.startReplay(s, st, pub, g, layer, false)
}

// replayCursor is a player's place in its publisher's GOP cache.
type replayCursor struct {
	on     bool
	pub    route.SessionID
	epoch  uint32
	layer  uint8  // the simulcast layer whose cache it walks (0 without simulcast)
	gen    uint64 // the cache's Gen when the cursor started
	next   int    // the next cached packet to send
	end    int    // the cache's length when the cursor started (the GOP the join got)
	tokens int64  // bytes the player may be sent now
	at     int64  // when tokens were last refilled
}

// startReplay sets player st's cursor at the start of publisher pub's
// cached GOP g (the player's layer's, for simulcast) and sends the first
// burst. live: g is a GOP that started after the player joined, whose
// packets are not counted as its join's GOP.
func (c *core) startReplay(s *route.Session, st *sessState, pub *route.Session, g *gop.Cache, layer uint8, live bool) {
	st.pq.cur = c.newCursor(pub, g, layer, live)
	c.paceReplay(s, st)
}

// newCursor starts a cursor at the start of publisher pub's cached GOP g
// (layer's) with the first burst's tokens, and counts the replay.
func (c *core) newCursor(pub *route.Session, g *gop.Cache, layer uint8, live bool) replayCursor {
	n, _ := g.Len()
	if live {
		n = 0
	}
	c.cnt.gopReplays.Add(1)
	return replayCursor{on: true, pub: pub.ID, epoch: pub.Epoch, layer: layer, gen: g.Gen(), end: n, tokens: replayBurst, at: c.now}
}

// paceReplay sends player s what its tokens allow from the cursor on,
// and ends the replay when the cursor reaches the cache's end.
func (c *core) paceReplay(s *route.Session, st *sessState) {
	r := &st.pq.cur
	pub, g := c.cursorCache(r)
	if g == nil {
		r.on = false
		return
	}
	n, _ := g.Len()
	for ; r.next < n; r.next++ {
		pkt := g.At(r.next)
		if int64(len(pkt)) > r.tokens {
			c.cnt.gopPaced.Add(1)
			return
		}
		r.tokens -= int64(len(pkt))
		if c.replayPasses(s, st, pub, r.layer, pkt) {
			sent := st.out[route.KindVideo].packets
			c.sendRTP(s, st, route.KindVideo, r.pub, r.epoch, pkt)
			c.replayedOne(s, st, pkt, sent, r.next < r.end)
			c.cnt.gopReplayed.Add(1)
		}
	}
	r.on = false
}

// cursorCache returns cursor r's publisher and GOP cache, with r's tokens
// refilled for this tick, or a nil cache when the replay is over (the
// publisher left, the cache overflowed). When a new keyframe restarted the
// cache meanwhile, the cursor moves to it (the packets skipped are older
// than it; the player may NACK them).
func (c *core) cursorCache(r *replayCursor) (*route.Session, *gop.Cache) {
	pub := c.tbl.Session(r.pub)
	if pub == nil || pub.Epoch != r.epoch || c.sess[r.pub].pub == nil {
		return nil, nil
	}
	g, _ := c.sess[r.pub].pub.gopFor(pub, r.layer)
	if g == nil || !g.Ready() {
		return nil, nil
	}
	if g.Gen() != r.gen { // a new keyframe came: start the player from it
		r.gen, r.next, r.end = g.Gen(), 0, 0 // live packets from here on
	}
	_, bytes := g.Len()
	rate := int64(minReplayRate)
	if age := g.Age(c.now); age > 0 {
		rate = max(rate, replayRateFactor*int64(bytes)*int64(time.Second)/age)
	}
	r.tokens = min(int64(replayBurst), r.tokens+rate*(c.now-r.at)/int64(time.Second))
	r.at = c.now
	return pub, g
}

// replayPasses applies a simulcast player's layer filter and an SVC
// player's temporal cap to a replayed packet (layers.go, svc.go), as the
// live path does.
func (c *core) replayPasses(s *route.Session, st *sessState, pub *route.Session, layer uint8, pkt []byte) bool {
	n := pub.Simulcast.N
	if n != 0 && !c.passLayer(s, st, pub.ID, pub.Epoch, layer, n, pkt) {
		return false
	}
	tid, start := c.temporalOf(pub, layer, pkt)
	return c.passTemporal(s, st, pub.ID, pub.Epoch, tid, start, n, pkt)
}

// replayedOne counts a replayed packet just passed to sendRTP (sent: the
// player's video packet count before; cached: it was in the GOP cache when
// the player joined, not a live packet the cursor caught up with) and sends the first one of a
// player's replay a second time. A receiver learns a stream's sequence
// numbers from the first packet it gets, so it cannot NACK a lost first
// packet, the start of the keyframe: it would wait for the next keyframe
// (a second or more; with publishers that make them on request, until a
// PLI). The copy is the same SRTP packet; a receiver that has the first
// drops it (RFC 3711 §3.3.2 replay list). The first goes out on its own
// (flush) so that the copy is another datagram: a GSO send of the two
// would be one skb, lost or delivered together.
func (c *core) replayedOne(s *route.Session, st *sessState, pkt []byte, sent uint64, cached bool) {
	ot := &st.out[route.KindVideo]
	if st.pq.replay == 0 && ot.packets != sent {
		c.flush()
		c.emitRTP(s, st, route.KindVideo, pkt, ot.lastSeq, ot.lastTS)
		c.cnt.gopFirstRepeats.Add(1)
	}
	st.pq.replay++
	if cached {
		st.pq.joinGOP++
		st.pq.joinGOPBytes += uint64(len(pkt))
	}
}
