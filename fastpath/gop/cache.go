package gop

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// Default bounds of a Cache: a 2 s GOP at 2.5 Mbps is about 600 KB and 500
// packets, so these hold typical GOPs of camera and screen streams; a longer
// GOP stops the caching until the next keyframe (a joining player then gets
// a keyframe request instead).
const (
	DefaultMaxPackets = 1024
	DefaultMaxBytes   = 2 << 20
)

// Stats are a Cache's counters.
type Stats struct {
	Keyframes uint64 // keyframe starts that restarted the cache
	Stored    uint64 // packets stored
	Overflows uint64 // GOPs that outgrew the bounds and were dropped
	Stale     uint64 // late packets from before the cached keyframe, not stored
	Replays   uint64 // Replay calls that sent packets
}

// Cache holds the packets of one video track from the last keyframe start
// to now, in arrival order, as the publisher sent them (plaintext, its
// SSRC/seq/ts: the caller rewrites each one per player like live packets).
type Cache struct {
	Stats     Stats
	codec     route.Codec
	slab      []byte
	offs      []uint32
	lens      []uint16
	n, used   int
	keyTS     uint32
	keySeq    uint16
	keyAt     int64 // the caller's clock when the cached keyframe started
	resets    uint64
	active    bool // a keyframe start was seen and the GOP is within bounds
	confirmed bool // the keyframe picture itself (not only parameter sets) is in
}

// NewCache returns a cache for codec holding at most maxPackets packets and
// maxBytes bytes, all allocated now.
func NewCache(codec route.Codec, maxPackets, maxBytes int) *Cache {
	return &Cache{
		codec: codec,
		slab:  make([]byte, maxBytes),
		offs:  make([]uint32, maxPackets),
		lens:  make([]uint16, maxPackets),
	}
}

// Codec is the codec the cache detects keyframes of.
func (c *Cache) Codec() route.Codec { return c.codec }

// Reset drops the cached GOP (a new publisher), keeping Stats.
func (c *Cache) Reset() { c.n, c.used, c.active, c.confirmed = 0, 0, false, false; c.resets++ }

// Ready reports whether Replay would give a decodable start: a keyframe is
// cached and the GOP since then is complete within the bounds.
func (c *Cache) Ready() bool { return c.active && c.confirmed && c.n > 0 }

// Len returns the packets and bytes cached.
func (c *Cache) Len() (packets, bytes int) { return c.n, c.used }

// Age returns how long ago, on the caller's clock, the cached keyframe
// started (Push's now); the replay of an old GOP is long and stale.
func (c *Cache) Age(now int64) int64 { return now - c.keyAt }

// Push offers a publisher packet (a whole plaintext RTP packet) that
// arrived at now (any monotonic clock of the caller's, read by Age) to the
// cache and returns its Kind. A keyframe start with a new RTP timestamp restarts
// the cache; later packets are appended until the bounds are hit, after
// which nothing is cached until the next keyframe. Packets of the keyframe's
// picture that arrived before its first packet (reordering) are kept.
func (c *Cache) Push(pkt []byte, now int64) Kind {
	start, end, ok := rtpPayload(pkt)
	if !ok || len(pkt) > 0xffff {
		return Other
	}
	kind := Classify(c.codec, pkt[start:end])
	seq, ts := binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint32(pkt[4:])
	if kind != Other {
		if !c.active || ts != c.keyTS {
			c.restart(seq, ts)
			c.keyAt = now
		}
		if kind == Keyframe {
			c.confirmed = true
		}
		c.add(pkt)
		return kind
	}
	if !c.active {
		return Other
	}
	if ts != c.keyTS && int16(seq-c.keySeq) < 0 { // from the GOP before: not decodable here
		c.Stats.Stale++
		return Other
	}
	c.add(pkt)
	return Other
}

// restart begins a new GOP at a keyframe start, keeping the already cached
// packets that carry the same timestamp (the same picture, reordered).
func (c *Cache) restart(seq uint16, ts uint32) {
	n, used := 0, 0
	if c.active {
		for i := 0; i < c.n; i++ {
			p := c.slab[c.offs[i] : c.offs[i]+uint32(c.lens[i])]
			if binary.BigEndian.Uint32(p[4:]) != ts {
				continue
			}
			copy(c.slab[used:], p) // moves towards the front; copy handles overlap
			c.offs[n], c.lens[n] = uint32(used), c.lens[i]
			used += len(p)
			n++
		}
	}
	c.n, c.used, c.keyTS, c.keySeq = n, used, ts, seq
	c.active, c.confirmed = true, false
	c.Stats.Keyframes++
}

func (c *Cache) add(pkt []byte) {
	if c.n == len(c.offs) || c.used+len(pkt) > len(c.slab) {
		c.n, c.used, c.active, c.confirmed = 0, 0, false, false
		c.Stats.Overflows++
		return
	}
	copy(c.slab[c.used:], pkt)
	c.offs[c.n], c.lens[c.n] = uint32(c.used), uint16(len(pkt))
	c.used += len(pkt)
	c.n++
	c.Stats.Stored++
}

// Replay calls fn with every cached packet in arrival order when Ready, and
// returns how many. The slices alias the cache: fn must finish with each
// (rewrite and encrypt it into its own buffer) before returning.
func (c *Cache) Replay(fn func(pkt []byte)) int {
	if !c.Ready() {
		return 0
	}
	for i := 0; i < c.n; i++ {
		o := c.offs[i]
		fn(c.slab[o : o+uint32(c.lens[i]) : o+uint32(c.lens[i])])
	}
	c.Stats.Replays++
	return c.n
}

// Gen changes whenever the cached packets are dropped or renumbered (a new
// keyframe, an overflow, Reset): a reader walking the cache with At across
// rounds starts again when it moved.
func (c *Cache) Gen() uint64 { return c.Stats.Keyframes + c.Stats.Overflows + c.resets }

// At returns cached packet i (0 ≤ i < Len's packets) when Ready, else nil.
// The slice aliases the cache, like Replay's.
func (c *Cache) At(i int) []byte {
	if !c.Ready() || i < 0 || i >= c.n {
		return nil
	}
	o := c.offs[i]
	return c.slab[o : o+uint32(c.lens[i]) : o+uint32(c.lens[i])]
}

// rtpPayload returns where the payload of an RTP packet starts and ends
// (RFC 3550 §5.1: fixed header, CSRCs, header extension, padding).
func rtpPayload(pkt []byte) (start, end int, ok bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return 0, 0, false
	}
	start = 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < start+4 {
			return 0, 0, false
		}
		start += 4 + 4*int(binary.BigEndian.Uint16(pkt[start+2:]))
	}
	end = len(pkt)
	if pkt[0]&0x20 != 0 {
		end -= int(pkt[len(pkt)-1])
	}
	if start > end || end > len(pkt) {
		return 0, 0, false
	}
	return start, end, true
}
