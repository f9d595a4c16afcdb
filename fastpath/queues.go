package fastpath

import (
	"sync/atomic"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/udpio"
)

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
	buf      [udpio.MaxDatagram]byte
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
	return p
}

// put returns a buffer whose last reference is gone.
func (s *slab) put(p *pkt) {
	if p.home != s.home || p.refs.Load() != 0 {
		panic("fastpath: packet buffer returned to the wrong slab or while referenced")
	}
	s.free = append(s.free, p)
}
