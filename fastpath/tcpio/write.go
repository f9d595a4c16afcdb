package tcpio

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// An output buffer grown past shrinkCap by a burst is dropped after
// shrinkAfter flushes in a row used less than an eighth of it, so idle
// connections do not pin big buffers while a connection under sustained load
// keeps its own (BenchmarkWriteFlush: dropping it after any small flush made
// Write re-grow it, ~4 bytes allocated per byte sent).
const (
	shrinkCap   = 64 << 10
	shrinkAfter = 64
)

// loop is our per-gnet-event-loop state: the connections with pending output.
type loop struct {
	el gnet.EventLoop

	mu    sync.Mutex
	dirty []*conn // connections whose pend is non-empty (or need a backlog refresh)

	hasDirty  atomic.Bool // dirty is non-empty
	scheduled atomic.Bool // a flush task is queued on the loop
	spare     []*conn     // loop goroutine only: the other half of dirty

	ctr loopCounters
}

// bg is the context handed to gnet's Execute (a package value: no allocation).
var bg = context.Background()

// loopOf returns the loop state for el, creating it on first sight (on open,
// never on the hot path).
func (s *Server) loopOf(el gnet.EventLoop) *loop {
	for _, l := range s.loopList() {
		if l.el == el {
			return l
		}
	}
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	old := s.loopList()
	for _, l := range old {
		if l.el == el {
			return l
		}
	}
	l := &loop{el: el}
	list := append(append(make([]*loop, 0, len(old)+1), old...), l)
	s.loops.Store(&list)
	return l
}

func (s *Server) loopList() []*loop {
	if p := s.loops.Load(); p != nil {
		return *p
	}
	return nil
}

// Write frames pkt (RFC 4571: 2-byte big-endian length) into peer's pending
// output. It returns false when peer has no open connection, pkt is empty or
// longer than 65535, or the connection's unsent output would exceed
// Config.MaxPending (the packet is dropped and counted: a slow TCP peer never
// stalls the caller). Safe from any goroutine; it takes one per-connection
// mutex for a copy, never makes a syscall and does not allocate once the
// connection's buffer has grown to its working size. Nothing is sent before
// the next Flush.
func (s *Server) Write(peer netip.AddrPort, pkt []byte) bool {
	c := s.lookup(peer)
	if c == nil {
		s.ctr.writeUnknown.Add(1)
		return false
	}
	n := len(pkt)
	if n == 0 || n > maxWireFrame {
		return false
	}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		s.ctr.writeUnknown.Add(1)
		return false
	}
	ok := len(c.pend)+lenPrefix+n+int(c.backlog.Load()) <= s.cfg.MaxPending
	if ok {
		c.pend = append(c.pend, byte(n>>8), byte(n))
		c.pend = append(c.pend, pkt...)
		c.frames++
	}
	// Mark dirty even on overflow: the next flush refreshes the backlog
	// figure, which is what lets a drained connection accept output again.
	enqueue := !c.dirty
	c.dirty = true
	c.mu.Unlock()
	if !ok {
		s.ctr.writeOverflow.Add(1)
	}
	if enqueue {
		l := c.loop
		l.mu.Lock()
		l.dirty = append(l.dirty, c)
		l.hasDirty.Store(true)
		l.mu.Unlock()
	}
	return ok
}

// Flush pushes every connection's pending output: it queues at most one task
// per gnet loop that has dirty connections, and that task writes each one's
// output with a single write call ("egress frames to one connection are
// coalesced per loop iteration"). It does not wait for the writes. Called by
// the fastpath at the end of each receive batch and by control after its
// writes; safe from any goroutine, including a Sink callback. Cost: one read
// lock, an atomic per loop, and two small allocations inside gnet per loop
// with output (its task-queue node and Execute's closure), none per connection
// or packet. A no-op after Close.
func (s *Server) Flush() {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.stopping.Load() {
		return
	}
	for _, l := range s.loopList() {
		if !l.hasDirty.Load() || !l.scheduled.CompareAndSwap(false, true) {
			continue
		}
		if err := l.el.Execute(bg, l); err != nil {
			l.scheduled.Store(false) // engine shutting down
		}
	}
}

// Run is the flush task; gnet runs it on the loop's goroutine.
func (l *loop) Run(context.Context) error {
	l.scheduled.Store(false)
	l.mu.Lock()
	batch := l.dirty
	l.dirty = l.spare
	l.hasDirty.Store(false)
	l.mu.Unlock()
	for i, c := range batch {
		l.flushConn(c)
		batch[i] = nil
	}
	l.spare = batch[:0]
	return nil
}

// flushConn swaps c's pending buffer out under its mutex and writes it. gnet's
// Write sends what the socket takes and copies the rest into its own outbound
// buffer (drained on EPOLLOUT), so the swapped buffer is free again on return.
func (l *loop) flushConn(c *conn) {
	if c.closed {
		return
	}
	c.mu.Lock()
	c.out, c.pend = c.pend, c.out[:0]
	frames := c.frames
	c.frames = 0
	c.dirty = false
	c.mu.Unlock()
	n := len(c.out)
	if n > 0 {
		// Count first: once written, the peer may act on the bytes before this
		// goroutine runs again, and Stats must already include them.
		l.ctr.writes.Add(1)
		l.ctr.framesOut.Add(frames)
		l.ctr.bytesOut.Add(uint64(n))
		_, _ = c.gc.Write(c.out) // on error gnet closes c (OnClose runs inside)
	}
	if !c.closed {
		c.backlog.Store(int64(c.gc.OutboundBuffered()))
	}
	c.out = c.out[:0]
	if cap(c.out) <= shrinkCap || n >= cap(c.out)/8 {
		c.smallFlushes = 0
	} else if c.smallFlushes++; c.smallFlushes >= shrinkAfter {
		c.out, c.smallFlushes = nil, 0 // the burst that grew it is long over
	}
}
