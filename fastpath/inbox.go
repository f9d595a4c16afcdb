package fastpath

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// The bridge's doors into the fastpath (DESIGN.md "bridge … taps (bounded
// rings) … feeds streams like a publisher"):
//
//   - Inject feeds plaintext RTP of a virtual publisher (rtmp_to_rtc). Any
//     goroutine may call it; the packet is copied into a slot of the owner
//     core's inbox, a bounded multi-producer queue, and the owner copies it into a
//     slab buffer and fans it out exactly like a decrypted publisher packet.
//   - RequestKeyframe makes the owner core of a publisher send it a PLI
//     through the core's keyframe-request path (coalesced like players' PLIs).
//   - OpenTap gives one reader goroutine a copy of every decrypted RTP
//     packet and RTCP sender report of one publisher (rtc_to_rtmp), through
//     a bounded single-producer ring written by the owner core.
//
// Inject and RequestKeyframe, like SRTP frames from TCP peers (tcp.go), go
// through the owner core's inbox (queues.go), which the core drains once a
// round (drainInbox). Every queue is bounded and a full one is a counted
// drop; the cores never block and never allocate for any of it.

// bridgeMTU is the largest packet Inject and a tap carry. WebRTC media is
// at most ~1200 bytes; the bridge's packetizer emits less.
const bridgeMTU = 1500

// Default depths.
const (
	defaultBridgeDepth = 512 // Inject/RequestKeyframe slots per core
	defaultTapDepth    = 512 // packets per tap
)

// BridgeStats counts what went through the bridge doors.
type BridgeStats struct {
	Injected      uint64 // packets Inject queued
	InjectDropped uint64 // Inject refused: full queue, unknown or non-virtual session, bad size, closed
	KeyframeReqs  uint64 // RequestKeyframe calls queued
	Tapped        uint64 // packets and SRs written to taps
	TapDropped    uint64 // full tap rings and oversize packets
}

// Inbox ops.
const (
	inboxInject uint8 = iota + 1
	inboxKeyframe
)

// bridgeState is the engine's part of the bridge doors.
type bridgeState struct {
	inboxes                                               []*inbox // per core
	taps                                                  atomic.Pointer[tapSet]
	tapMu                                                 sync.Mutex // serializes tap set copies (control path)
	inflight                                              atomic.Int64
	injected, injectDrops, keyframeReqs, tapped, tapDrops atomic.Uint64
}

func (b *bridgeState) init(cores, depth int) {
	if depth <= 0 {
		depth = defaultBridgeDepth
	}
	b.inboxes = make([]*inbox, cores)
	for i := range b.inboxes {
		b.inboxes[i] = newInbox(depth)
	}
}

// quiesce waits until no Inject or RequestKeyframe is between its stop
// check and its wake-up, so Close can close the wakers.
func (b *bridgeState) quiesce() {
	for b.inflight.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
}

// Inject queues one plaintext RTP packet of virtual publisher sid
// (route.Session.Virtual) for its owner core, which fans it out to the
// stream's players like a decrypted publisher packet: same per-player
// SSRC/PT/seq/ts rewrite, same cross-core rings. The packet's SSRC and PT
// must be the session's. pkt is copied; any goroutine may call Inject. It
// never blocks: false means the packet was dropped (and counted).
func (e *Engine) Inject(sid route.SessionID, pkt []byte) bool {
	e.br.inflight.Add(1)
	ok := e.inject(inboxInject, sid, pkt)
	e.br.inflight.Add(-1)
	if !ok {
		e.br.injectDrops.Add(1)
	}
	return ok
}

// RequestKeyframe makes the owner core of publisher sid send it a PLI
// (RFC 4585 §6.3.1), coalesced with the players' requests. It never blocks;
// false means the request was not queued.
func (e *Engine) RequestKeyframe(sid route.SessionID) bool {
	e.br.inflight.Add(1)
	ok := e.inject(inboxKeyframe, sid, nil)
	e.br.inflight.Add(-1)
	if ok {
		e.br.keyframeReqs.Add(1)
	}
	return ok
}

func (e *Engine) inject(op uint8, sid route.SessionID, pkt []byte) bool {
	if e.stop.Load() || len(e.cores) == 0 {
		return false
	}
	s := e.table.Load().Session(sid)
	if s == nil || s.Role != route.RolePublisher {
		return false
	}
	if op == inboxInject && (!s.Virtual || len(pkt) < 12 || len(pkt) > bridgeMTU) {
		return false
	}
	owner := e.ownerOf(s)
	slot, pos := e.br.inboxes[owner].claim()
	if slot == nil {
		return false
	}
	slot.op, slot.sid, slot.n = op, sid, uint16(copy(slot.buf[:], pkt))
	slot.publish(pos)
	if op == inboxInject {
		e.br.injected.Add(1)
	}
	if c := e.cores[owner]; e.cfg.WakeTimeout == 0 && c.sleeping.CompareAndSwap(true, false) {
		c.waker.Wake()
	}
	return true
}

// BridgeStats returns the bridge doors' counters.
func (e *Engine) BridgeStats() BridgeStats {
	return BridgeStats{
		Injected: e.br.injected.Load(), InjectDropped: e.br.injectDrops.Load(),
		KeyframeReqs: e.br.keyframeReqs.Load(),
		Tapped:       e.br.tapped.Load(), TapDropped: e.br.tapDrops.Load(),
	}
}

// inboxWork reports whether Inject or RequestKeyframe queued anything for
// this core (its check before sleeping).
func (c *core) inboxWork() bool { return c.e.br.inboxes[c.id].peek() != nil }

// drainInbox takes up to ringBurst injected packets and keyframe requests.
// A slot naming a session this round's table does not know yet (the table
// that added it was published after begin) waits for the next round.
func (c *core) drainInbox() int {
	q := c.e.br.inboxes[c.id]
	n := 0
	for ; n < ringBurst; n++ {
		sl := q.peek()
		if sl == nil {
			break
		}
		if c.tbl.Session(sl.sid) == nil && c.e.table.Load() != c.tbl {
			break
		}
		switch sl.op {
		case inboxInject:
			c.onInject(sl.sid, sl.buf[:sl.n])
		case inboxWire:
			c.onWire(sl.sid, sl.buf[:sl.n])
		case inboxKeyframe:
			if s := c.tbl.Session(sl.sid); s != nil && c.e.ownerOf(s) == c.id {
				c.wantKeyframe(c.tbl, sl.sid)
			}
		}
		q.pop()
	}
	return n
}

// onInject fans out one packet of a virtual publisher this core owns.
func (c *core) onInject(sid route.SessionID, b []byte) {
	s := c.tbl.Session(sid)
	if s == nil || !s.Virtual || s.Role != route.RolePublisher || c.e.ownerOf(s) != c.id {
		c.cnt.drops[DropNotReady].Add(1)
		return
	}
	kind, ok := trackOf(s, binary.BigEndian.Uint32(b[8:]))
	if !ok {
		c.cnt.drops[DropUnknownSSRC].Add(1)
		return
	}
	if b[1]&0x7f != s.Tracks[kind].PT {
		c.cnt.drops[DropPayloadType].Add(1)
		return
	}
	if _, err := c.hdr.Unmarshal(b); err != nil {
		c.cnt.drops[DropGarbage].Add(1)
		return
	}
	// Same path as a decrypted publisher packet: history and GOP cache too,
	// so players of an RTMP-fed stream get their first frame at once.
	c.deliver(s, &c.sess[sid], kind, b)
}
