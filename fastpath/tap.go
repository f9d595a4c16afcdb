package fastpath

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// TapPacket is one item a Tap delivers: a decrypted RTP packet, or the
// NTP/RTP timestamp pair of an RTCP sender report.
type TapPacket struct {
	Kind    route.Kind
	SR      bool      // a sender report: NTP and RTPTime are set, Data is empty
	NTP     uint64    // SR: 64-bit NTP timestamp
	RTPTime uint32    // SR: RTP timestamp sampled at NTP
	At      time.Time // when the owner core handled it (batch granularity)
	Data    []byte    // RTP packet, header extensions kept; valid until the next Next
}

// Tap copies one publisher's decrypted RTP and sender reports out of the
// fastpath for one reader goroutine (rtc_to_rtmp). The owner core is the
// only producer and never blocks: when the ring is full the packet is
// dropped and counted.
type Tap struct {
	e     *Engine
	sid   route.SessionID
	epoch uint32
	ring  tapRing // queues.go

	held    bool        // reader: Next lent out the slot at head
	waiting atomic.Bool // reader is about to block on wake
	wake    chan struct{}
	closed  atomic.Bool
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
	written atomic.Uint64
}

// tapSet is the immutable index of open taps, by session slot.
type tapSet struct{ byID []*Tap }

// OpenTap starts copying the decrypted RTP and RTCP sender reports of
// publisher sid (at epoch, as published in the route table) into a ring of
// depth packets (0: 512) for one reader. A tap already open for sid is
// closed. Close the tap when done.
func (e *Engine) OpenTap(sid route.SessionID, epoch uint32, depth int) *Tap {
	if depth <= 0 {
		depth = defaultTapDepth
	}
	t := &Tap{e: e, sid: sid, epoch: epoch, wake: make(chan struct{}, 1), done: make(chan struct{})}
	t.ring.init(depth)
	var old *Tap
	e.br.tapMu.Lock()
	cur := e.br.taps.Load()
	next := &tapSet{}
	if cur != nil {
		next.byID = append(next.byID, cur.byID...)
	}
	for len(next.byID) <= int(sid) {
		next.byID = append(next.byID, nil)
	}
	old, next.byID[sid] = next.byID[sid], t
	e.br.taps.Store(next)
	e.br.tapMu.Unlock()
	if old != nil {
		old.Close()
	}
	return t
}

// Close detaches the tap; a blocked Next returns false. The core may
// finish a write it started; the ring stays valid until the tap is
// garbage.
func (t *Tap) Close() {
	t.once.Do(func() {
		b := &t.e.br
		b.tapMu.Lock()
		if cur := b.taps.Load(); cur != nil && int(t.sid) < len(cur.byID) && cur.byID[t.sid] == t {
			next := &tapSet{byID: append([]*Tap(nil), cur.byID...)}
			next.byID[t.sid] = nil
			b.taps.Store(next)
		}
		b.tapMu.Unlock()
		t.closed.Store(true)
		close(t.done)
	})
}

// Dropped is how many packets the full ring refused.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Written is how many packets and reports the core copied in.
func (t *Tap) Written() uint64 { return t.written.Load() }

// Next returns the next packet, waiting until one arrives. It returns false
// when the tap is closed or stop is closed. The packet's Data is valid
// until the next call. Only one goroutine may call Next.
func (t *Tap) Next(stop <-chan struct{}) (TapPacket, bool) {
	if t.held {
		t.held = false
		t.ring.advance()
	}
	for {
		if s := t.ring.front(); s != nil {
			t.held = true
			return TapPacket{Kind: s.kind, SR: s.sr, NTP: s.ntp, RTPTime: s.rtpTS,
				At: t.e.started.Add(time.Duration(s.at)), Data: s.buf[:s.n]}, true
		}
		if t.closed.Load() {
			return TapPacket{}, false
		}
		// Set the flag, then look again: the core stores tail before it
		// reads the flag, so one of the two sees the other.
		t.waiting.Store(true)
		if !t.ring.empty() {
			t.waiting.Store(false)
			continue
		}
		select {
		case <-t.wake:
		case <-t.done:
		case <-stop:
			t.waiting.Store(false)
			return TapPacket{}, false
		}
		t.waiting.Store(false)
	}
}

// slot claims the next ring slot for the owner core, or counts a drop.
func (t *Tap) slot() (*tapSlot, uint64) {
	sl, tl := t.ring.claim()
	if sl == nil {
		t.dropped.Add(1)
		t.e.br.tapDrops.Add(1)
	}
	return sl, tl
}

// commit publishes the slot and wakes a waiting reader.
func (t *Tap) commit(tl uint64) {
	t.ring.publish(tl)
	t.written.Add(1)
	t.e.br.tapped.Add(1)
	if t.waiting.Load() && t.waiting.CompareAndSwap(true, false) {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// tapOf returns the open tap of publisher s, or nil.
func (c *core) tapOf(s *route.Session) *Tap {
	ts := c.e.br.taps.Load()
	if ts == nil || int(s.ID) >= len(ts.byID) {
		return nil
	}
	if t := ts.byID[s.ID]; t != nil && t.epoch == s.Epoch {
		return t
	}
	return nil
}

// tapRTP copies a decrypted RTP packet of publisher s to its tap.
func (c *core) tapRTP(s *route.Session, kind route.Kind, plain []byte) {
	t := c.tapOf(s)
	if t == nil {
		return
	}
	if len(plain) > bridgeMTU {
		t.dropped.Add(1)
		c.e.br.tapDrops.Add(1)
		return
	}
	sl, tl := t.slot()
	if sl == nil {
		return
	}
	sl.kind, sl.sr, sl.at = kind, false, c.now
	sl.n = uint16(copy(sl.buf[:], plain))
	t.commit(tl)
}

// tapSR copies the timestamps of a sender report of publisher s (one
// packet of a compound, from rtcpx.Walk) to its tap.
func (c *core) tapSR(s *route.Session, p []byte) {
	t := c.tapOf(s)
	if t == nil {
		return
	}
	si, ok := rtcpx.ParseSR(p)
	if !ok {
		return
	}
	kind, ok := trackOf(s, si.SSRC)
	if !ok && si.SSRC != 0 && si.SSRC == c.topLayerSSRC(s) {
		kind, ok = route.KindVideo, true // simulcast: the tap takes the highest layer (layers.go)
	}
	if !ok {
		return
	}
	if sl, tl := t.slot(); sl != nil {
		sl.kind, sl.sr, sl.at, sl.n = kind, true, c.now, 0
		sl.ntp, sl.rtpTS = si.NTP, si.RTPTime
		t.commit(tl)
	}
}
