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
//     core's bounded multi-producer queue, and the owner copies it into a
//     slab buffer and fans it out exactly like a decrypted publisher packet.
//   - RequestKeyframe makes the owner core of a publisher send it a PLI
//     through the core's keyframe-request path (coalesced like players' PLIs).
//   - OpenTap gives one reader goroutine a copy of every decrypted RTP
//     packet and RTCP sender report of one publisher (rtc_to_rtmp), through
//     a bounded single-producer ring written by the owner core.
//
// Every queue is bounded and a full one is a counted drop; the cores never
// block and never allocate for any of it.

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

// Bridge queue ops.
const (
	bqInject uint8 = iota + 1
	bqKeyframe
)

// bqSlot is one slot of a bridgeQueue: seq is the slot's turn (Vyukov).
type bqSlot struct {
	seq atomic.Uint64
	op  uint8
	n   uint16
	sid route.SessionID
	buf [bridgeMTU]byte
}

// bridgeQueue is a bounded multi-producer single-consumer queue (Dmitry
// Vyukov's bounded MPMC queue, with the owner core as the only consumer):
// producers claim a slot with one CAS, fill it, then publish it; the core
// reads published slots in order. No locks, no allocation.
type bridgeQueue struct {
	_     [64]byte
	tail  atomic.Uint64 // next slot to claim; written by producers
	_     [56]byte
	head  uint64 // next slot to read; the owner core's alone
	mask  uint64
	slots []bqSlot
}

func newBridgeQueue(size int) *bridgeQueue {
	n := 1
	for n < size {
		n <<= 1
	}
	q := &bridgeQueue{mask: uint64(n - 1), slots: make([]bqSlot, n)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// claim reserves the next slot for a producer, or returns nil when full.
// The producer fills it and calls publish(pos).
func (q *bridgeQueue) claim() (*bqSlot, uint64) {
	for {
		pos := q.tail.Load()
		s := &q.slots[pos&q.mask]
		switch d := int64(s.seq.Load() - pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				return s, pos
			}
		case d < 0:
			return nil, 0
		}
	}
}

// publish hands a filled slot to the consumer.
func (s *bqSlot) publish(pos uint64) { s.seq.Store(pos + 1) }

// peek returns the oldest published slot, or nil.
func (q *bridgeQueue) peek() *bqSlot {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return nil
	}
	return s
}

// pop frees the slot peek returned for producers.
func (q *bridgeQueue) pop() {
	q.slots[q.head&q.mask].seq.Store(q.head + q.mask + 1)
	q.head++
}

// bridgeState is the engine's part of the bridge doors.
type bridgeState struct {
	queues                                                []*bridgeQueue // per core
	taps                                                  atomic.Pointer[tapSet]
	tapMu                                                 sync.Mutex // serializes tap set copies (control path)
	inflight                                              atomic.Int64
	injected, injectDrops, keyframeReqs, tapped, tapDrops atomic.Uint64
}

func (b *bridgeState) init(cores, depth int) {
	if depth <= 0 {
		depth = defaultBridgeDepth
	}
	b.queues = make([]*bridgeQueue, cores)
	for i := range b.queues {
		b.queues[i] = newBridgeQueue(depth)
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
	ok := e.inject(bqInject, sid, pkt)
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
	ok := e.inject(bqKeyframe, sid, nil)
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
	if op == bqInject && (!s.Virtual || len(pkt) < 12 || len(pkt) > bridgeMTU) {
		return false
	}
	owner := e.ownerOf(s)
	slot, pos := e.br.queues[owner].claim()
	if slot == nil {
		return false
	}
	slot.op, slot.sid, slot.n = op, sid, uint16(copy(slot.buf[:], pkt))
	slot.publish(pos)
	if op == bqInject {
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

// bridgeWork reports whether Inject or RequestKeyframe queued anything for
// this core (its check before sleeping).
func (c *core) bridgeWork() bool { return c.e.br.queues[c.id].peek() != nil }

// drainBridge takes up to ringBurst injected packets and keyframe requests.
// A slot naming a session this round's table does not know yet (the table
// that added it was published after begin) waits for the next round.
func (c *core) drainBridge() int {
	q := c.e.br.queues[c.id]
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
		case bqInject:
			c.onInject(sl.sid, sl.buf[:sl.n])
		case bqWire:
			c.onWire(sl.sid, sl.buf[:sl.n])
		case bqKeyframe:
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
