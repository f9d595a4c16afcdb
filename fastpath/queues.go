package fastpath

import (
	"sync/atomic"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/udpio"
)

// The fastpath's queues, all bounded, none locked, none allocating per
// packet: a core's packet slab (slab, pkt); the core-to-core rings (ring,
// single producer, single consumer) for fan-out, hand-offs and buffers
// going home; each core's inbox (multi producer: Inject, RequestKeyframe,
// TCP frames); and each tap's ring (tapRing: the owner core to one reader
// goroutine). A full queue is a counted drop, never a wait.

// pkt is a slab packet buffer. A core takes it from its own slab, fills it
// once and may then hand read-only references to other cores through their
// rings (quic-go's packetBuffer: reference-counted, panics on misuse). When
// the last reference goes, the buffer returns to its home core's free list,
// directly on the home core and through a return ring from any other.
//
// The slab is pointer-free (a []pkt), so the GC never scans packet data.
type pkt struct {
	refs     atomic.Int32
	home     uint16 // core whose slab holds it
	idx      uint32 // index in that slab
	n        int
	stream   route.StreamID
	src      route.SessionID // publisher (fan-out) or session (ingress hand-off)
	srcEpoch uint32
	kind     route.Kind
	// layer is a simulcast video packet's layer, of layers (0: no simulcast).
	layer, layers uint8
	// tid is a VP9 or AV1 packet's temporal layer id (svc.go), noTID
	// otherwise; tstart says it starts a frame.
	tid    uint8
	tstart bool
	buf    [udpio.MaxDatagram]byte
}

// data returns the packet's bytes.
func (p *pkt) data() []byte { return p.buf[:p.n] }

// retain adds a reference for another holder.
func (p *pkt) retain() {
	if p.refs.Add(1) <= 1 {
		panic("fastpath: retain of a free packet buffer")
	}
}

// Ring message ops.
const (
	opFanout   uint8 = iota + 1 // p is a decrypted publisher packet: send it to my players of p.stream
	opIngress                   // p is a datagram of session p.src that I own, received by another core
	opKeyframe                  // sid is a publisher I own that owes a keyframe
)

// msg is one ring slot.
type msg struct {
	p   *pkt
	sid route.SessionID
	op  uint8
	// layer is an opKeyframe's simulcast layer plus one; 0 = every layer.
	layer uint8
	// cached: an opReplay packet was in the GOP cached at the player's
	// join (not a live packet the paced replay caught up with).
	cached bool
}

// ring is a bounded single-producer single-consumer queue between two
// cores. The producer never blocks: a full ring is a counted drop.
type ring struct {
	_     [64]byte
	head  atomic.Uint64 // next slot to read; written by the consumer
	_     [56]byte
	tail  atomic.Uint64 // next slot to write; written by the producer
	_     [56]byte
	mask  uint64
	slots []msg
}

func newRing(size int) *ring {
	n := 1
	for n < size {
		n <<= 1
	}
	return &ring{mask: uint64(n - 1), slots: make([]msg, n)}
}

// push appends m, or reports false when the ring is full.
func (r *ring) push(m msg) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return false
	}
	r.slots[t&r.mask] = m
	r.tail.Store(t + 1)
	return true
}

// pop takes the oldest message.
func (r *ring) pop() (msg, bool) {
	h := r.head.Load()
	if h == r.tail.Load() {
		return msg{}, false
	}
	i := h & r.mask
	m := r.slots[i]
	r.slots[i] = msg{}
	r.head.Store(h + 1)
	return m, true
}

// empty reports whether nothing is queued (a consumer's check before sleeping).
func (r *ring) empty() bool { return r.head.Load() == r.tail.Load() }

// free is how many messages the ring can take now (its producer's view).
func (r *ring) free() int { return int(r.mask + 1 - (r.tail.Load() - r.head.Load())) }

// slab is a core's preallocated packet buffers and its free list. Only the
// home core takes from it; buffers come back through put (home core) or the
// return rings (other cores).
type slab struct {
	home uint16
	pkts []pkt
	free []*pkt
}

func newSlab(home, n int) *slab {
	s := &slab{home: uint16(home), pkts: make([]pkt, n), free: make([]*pkt, 0, n)}
	for i := range s.pkts {
		p := &s.pkts[i]
		p.home, p.idx = uint16(home), uint32(i)
		s.free = append(s.free, p)
	}
	return s
}

// get takes a free buffer with one reference, or nil when the slab is empty.
func (s *slab) get() *pkt {
	n := len(s.free)
	if n == 0 {
		return nil
	}
	p := s.free[n-1]
	s.free = s.free[:n-1]
	if !p.refs.CompareAndSwap(0, 1) {
		panic("fastpath: slab handed out a packet buffer still in use")
	}
	p.layer, p.layers, p.tid = 0, 0, noTID
	return p
}

// put returns a buffer whose last reference is gone.
func (s *slab) put(p *pkt) {
	if p.home != s.home || p.refs.Load() != 0 {
		panic("fastpath: packet buffer returned to the wrong slab or while referenced")
	}
	s.free = append(s.free, p)
}

// inboxSlot is one slot of an inbox: seq is the slot's turn (Vyukov).
type inboxSlot struct {
	seq atomic.Uint64
	op  uint8
	n   uint16
	sid route.SessionID
	buf [bridgeMTU]byte
}

// inbox is a core's door for other goroutines (Engine.Inject,
// RequestKeyframe, and SRTP frames from TCP peers, inbox.go and tcp.go):
// a bounded multi-producer single-consumer queue (Dmitry
// Vyukov's bounded MPMC queue, with the owner core as the only consumer):
// producers claim a slot with one CAS, fill it, then publish it; the core
// reads published slots in order. No locks, no allocation.
type inbox struct {
	_     [64]byte
	tail  atomic.Uint64 // next slot to claim; written by producers
	_     [56]byte
	head  uint64 // next slot to read; the owner core's alone
	mask  uint64
	slots []inboxSlot
}

func newInbox(size int) *inbox {
	n := 1
	for n < size {
		n <<= 1
	}
	q := &inbox{mask: uint64(n - 1), slots: make([]inboxSlot, n)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// claim reserves the next slot for a producer, or returns nil when full.
// The producer fills it and calls publish(pos).
func (q *inbox) claim() (*inboxSlot, uint64) {
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
func (s *inboxSlot) publish(pos uint64) { s.seq.Store(pos + 1) }

// peek returns the oldest published slot, or nil.
func (q *inbox) peek() *inboxSlot {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return nil
	}
	return s
}

// pop frees the slot peek returned for producers.
func (q *inbox) pop() {
	q.slots[q.head&q.mask].seq.Store(q.head + q.mask + 1)
	q.head++
}

// tapSlot is one ring entry; the payload is copied in by the owner core.
type tapSlot struct {
	kind  route.Kind
	sr    bool
	n     uint16
	rtpTS uint32
	ntp   uint64
	at    int64
	buf   [bridgeMTU]byte
}

// tapRing is a Tap's bounded single-producer single-consumer queue: the
// publisher's owner core writes, the tap's one reader goroutine reads. The
// producer never blocks: a full ring is a counted drop (Tap.slot).
type tapRing struct {
	_     [64]byte
	head  atomic.Uint64 // next slot to read; the reader's
	_     [56]byte
	tail  atomic.Uint64 // next slot to write; the owner core's
	_     [56]byte
	mask  uint64
	slots []tapSlot
}

// init sizes the ring to depth rounded up to a power of two.
func (r *tapRing) init(depth int) {
	n := 1
	for n < depth {
		n <<= 1
	}
	r.mask, r.slots = uint64(n-1), make([]tapSlot, n)
}

// claim returns the next slot for the producer to fill and its position,
// or nil when the ring is full.
func (r *tapRing) claim() (*tapSlot, uint64) {
	tl := r.tail.Load()
	if tl-r.head.Load() > r.mask {
		return nil, 0
	}
	return &r.slots[tl&r.mask], tl
}

// publish hands the slot claimed at tl to the reader.
func (r *tapRing) publish(tl uint64) { r.tail.Store(tl + 1) }

// front returns the oldest published slot for the reader, or nil; it stays
// the reader's until advance.
func (r *tapRing) front() *tapSlot {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil
	}
	return &r.slots[h&r.mask]
}

// advance gives the slot front returned back to the producer.
func (r *tapRing) advance() { r.head.Store(r.head.Load() + 1) }

// empty reports whether nothing is published (the reader's check before it
// blocks).
func (r *tapRing) empty() bool { return r.head.Load() == r.tail.Load() }
