package fastpath

import "math/bits"

// A core's side of the cross-core queues (queues.go): pushing to a peer's
// ring and waking it, draining the rings peers filled for this core, and
// the slab buffers that travel between cores by reference and go home
// when released.

// ringWork reports whether a peer queued anything for this core.
func (c *core) ringWork() bool {
	for from := range c.e.rings {
		if r := c.e.rings[from][c.id]; r != nil && !r.empty() {
			return true
		}
	}
	return c.inboxWork()
}

// wakePeers wakes the sleeping cores this round gave ring work. A producer
// pushes before it reads the flag and a consumer sets the flag before its
// last look at the rings, so one of them always sees the other.
func (c *core) wakePeers() {
	for m := c.wakeMask; m != 0; m &= m - 1 {
		peer := c.e.cores[bits.TrailingZeros64(m)]
		if c.e.cfg.WakeTimeout == 0 && peer.sleeping.CompareAndSwap(true, false) {
			peer.waker.Wake()
			c.cnt.wakeups.Add(1)
		}
	}
	c.wakeMask = 0
}

// push queues m for core to, counting an overflow when its ring is full.
func (c *core) push(to int, m msg) bool {
	if !c.e.rings[c.id][to].push(m) {
		c.cnt.ringOverflows.Add(1)
		c.cnt.drops[DropRingFull].Add(1)
		return false
	}
	c.wakeMask |= 1 << uint(to)
	return true
}

// drainRings takes up to ringBurst messages from each peer.
func (c *core) drainRings() int {
	taken := 0
	for from := range c.e.rings {
		r := c.e.rings[from][c.id]
		if r == nil {
			continue
		}
		for range ringBurst {
			m, ok := r.pop()
			if !ok {
				break
			}
			taken++
			switch m.op {
			case opFanout:
				c.queue(m.p)
			case opIngress:
				c.onHandoff(m.p)
			case opKeyframe:
				c.wantLayerKeyframe(m.sid, m.layer)
			default:
				c.onQualityMsg(from, m)
			}
		}
	}
	if taken > 0 {
		c.cnt.ringIn.Add(uint64(taken))
	}
	return taken
}

// drainReturns takes back this core's buffers that other cores released.
func (c *core) drainReturns() {
	for from, r := range c.e.rets[c.id] {
		if from == c.id {
			continue
		}
		for {
			m, ok := r.pop()
			if !ok {
				break
			}
			c.slab.put(m.p)
		}
	}
}

// getPkt takes a slab buffer, reclaiming returned ones when the free list is empty.
func (c *core) getPkt() *pkt {
	p := c.slab.get()
	if p == nil {
		c.drainReturns()
		if p = c.slab.get(); p == nil {
			c.cnt.drops[DropNoBuffer].Add(1)
		}
	}
	return p
}

// release drops one reference; the last one sends the buffer home.
func (c *core) release(p *pkt) {
	switch r := p.refs.Add(-1); {
	case r > 0:
		return
	case r < 0:
		panic("fastpath: packet buffer released twice")
	}
	if int(p.home) == c.id {
		c.slab.put(p)
		return
	}
	if !c.e.rets[p.home][c.id].push(msg{p: p}) {
		panic("fastpath: return ring overflow (holds a whole slab)")
	}
}
