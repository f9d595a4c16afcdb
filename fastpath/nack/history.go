package nack

// History sizes (packets). Powers of two, so a 16-bit sequence number maps
// to a slot with a mask and wraps cleanly. SRS keeps 100 audio / 1000 video.
const (
	AudioHistory = 128
	VideoHistory = 1024
	// SlotSize is the largest packet a slot holds; bigger ones are not kept.
	SlotSize = 1500
)

// HistoryStats are a History's counters.
type HistoryStats struct {
	Stored, Hits, Misses, TooBig uint64
}

type slot struct {
	seq uint16
	n   uint16 // 0: empty
}

// History is a ring of the last N packets of one track keyed by sequence
// number, with the bytes in one preallocated slab. It is pointer-free apart
// from its two slices, so the GC has nothing to scan per packet.
//
// Which sequence number keys it is the caller's choice. Fanout keys it by the
// publisher's (incoming) sequence number and keeps one History per published
// track: a player's NACK is mapped back through that player's seq offset and
// the packet is rewritten like any forwarded one. That costs one History per
// track instead of one per player (SRS keeps rewritten copies per player).
type History struct {
	Stats HistoryStats
	mask  uint16
	slots []slot
	slab  []byte
}

// NewHistory returns a History of size packets; size must be a power of two
// between 1 and 32768 (AudioHistory, VideoHistory), else it panics.
func NewHistory(size int) *History {
	if size <= 0 || size > 32768 || size&(size-1) != 0 {
		panic("nack: history size must be a power of two in [1, 32768]")
	}
	return &History{mask: uint16(size - 1), slots: make([]slot, size), slab: make([]byte, size*SlotSize)}
}

// Size is the number of slots.
func (h *History) Size() int { return len(h.slots) }

// Reset empties the ring (a new publisher), keeping Stats and memory.
func (h *History) Reset() { clear(h.slots) }

// Put copies pkt into the slot for seq, replacing what was there. It returns
// false (and keeps nothing) when pkt is empty or longer than SlotSize.
func (h *History) Put(seq uint16, pkt []byte) bool {
	i := seq & h.mask
	if len(pkt) == 0 || len(pkt) > SlotSize {
		h.slots[i].n = 0 // never serve the older packet for this seq
		h.Stats.TooBig++
		return false
	}
	off := int(i) * SlotSize
	copy(h.slab[off:off+SlotSize], pkt)
	h.slots[i] = slot{seq: seq, n: uint16(len(pkt))}
	h.Stats.Stored++
	return true
}

// Get returns the packet stored for seq. The slice aliases the slab: use it
// (encrypt or copy it) before the next Put.
func (h *History) Get(seq uint16) ([]byte, bool) {
	i := seq & h.mask
	s := h.slots[i]
	if s.n == 0 || s.seq != seq {
		h.Stats.Misses++
		return nil, false
	}
	h.Stats.Hits++
	off := int(i) * SlotSize
	return h.slab[off : off+int(s.n) : off+int(s.n)], true
}
