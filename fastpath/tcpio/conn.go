package tcpio

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/fanout/fanout/fastpath/route"
)

// numShards spreads the peer table's read locks so Write calls from several
// fastpath cores rarely touch the same lock word.
const numShards = 64

type shard struct {
	mu sync.RWMutex
	m  map[netip.AddrPort]*conn
	_  [32]byte // keep neighbouring shards' locks off one cache line
}

func shardOf(p netip.AddrPort) uint32 {
	a := p.Addr().As16()
	return (uint32(p.Port()) ^ uint32(a[15])<<3 ^ uint32(a[14])<<5) % numShards
}

// conn is one ICE-TCP connection.
type conn struct {
	peer netip.AddrPort
	gc   gnet.Conn
	loop *loop

	// Owned by the connection's loop goroutine.
	fr           framer     // inbound parser
	closed       bool       // OnClose ran
	ipKey        netip.Addr // counted in Server.perIP under this key; invalid = not counted
	published    bool       // in the peer table (so TCPClosed is due)
	reason       uint8      // close reason decided on the loop
	out          []byte     // the buffer being written; swapped with pend
	smallFlushes uint8      // flushes in a row that used little of a big out

	closeReq atomic.Uint32 // 1 + reason asked by CloseConn
	backlog  atomic.Int64  // gnet's unsent bytes after the last flush

	mu     sync.Mutex // guards the fields below; never held across a syscall
	pend   []byte     // framed output waiting for Flush
	frames uint64     // frames in pend
	dirty  bool       // on its loop's dirty list
	dead   bool       // closed: Write refuses
}

// lookup finds the open connection behind a pseudo-address.
func (s *Server) lookup(peer netip.AddrPort) *conn {
	sh := &s.shards[shardOf(peer)]
	sh.mu.RLock()
	c := sh.m[peer]
	sh.mu.RUnlock()
	return c
}

// insert publishes c unless its pseudo-address is taken (Linux may reuse a
// source port towards another local port: the listener and a shared port).
func (s *Server) insert(c *conn) bool {
	sh := &s.shards[shardOf(c.peer)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, taken := sh.m[c.peer]; taken {
		return false
	}
	sh.m[c.peer] = c
	return true
}

func (s *Server) remove(c *conn) {
	sh := &s.shards[shardOf(c.peer)]
	sh.mu.Lock()
	if sh.m[c.peer] == c {
		delete(sh.m, c.peer)
	}
	sh.mu.Unlock()
}

// CloseConn closes the connection behind peer (no-op when unknown); reason is
// one of CloseUnknownSession, CloseDuplicate or CloseControl and is counted.
// Safe from any goroutine, including from inside Sink.TCPFrame: no frame after
// the current one is delivered.
func (s *Server) CloseConn(peer netip.AddrPort, reason uint8) {
	c := s.lookup(peer)
	if c == nil {
		return
	}
	if reason >= NumCloseReasons {
		reason = CloseControl
	}
	c.closeReq.CompareAndSwap(0, uint32(reason)+1)
	s.life.RLock()
	if !s.stopping.Load() {
		_ = c.gc.Close() // asynchronous: runs on the connection's loop
	}
	s.life.RUnlock()
}

// handler adapts Server to gnet.EventHandler without exporting the callbacks.
type handler struct{ s *Server }

func (h handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.eng = eng
	return gnet.None
}

func (handler) OnShutdown(gnet.Engine) {}

// OnTick fires first once all loops run: that is Start's "ready".
func (h handler) OnTick() (time.Duration, gnet.Action) {
	h.s.readyOnce.Do(func() { close(h.s.ready) })
	return idleTick, gnet.None
}

func (h handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	remote, ok := addrPortOf(gc.RemoteAddr())
	if !ok {
		return nil, gnet.Close
	}
	c := &conn{
		peer: route.TCPPeer(remote),
		gc:   gc,
		loop: s.loopOf(gc.EventLoop()),
		fr:   framer{maxFrame: s.cfg.MaxFrame},
	}
	gc.SetContext(c)
	s.ctr.connsOpen.Add(1)
	s.ctr.connsTotal.Add(1)
	if !s.admit(c, remote.Addr()) {
		c.reason = CloseIPLimit
		return nil, gnet.Close
	}
	if !s.insert(c) {
		c.reason = CloseDuplicate
		return nil, gnet.Close
	}
	c.published = true
	return nil, gnet.None
}

func (h handler) OnClose(gc gnet.Conn, _ error) gnet.Action {
	s := h.s
	c, _ := gc.Context().(*conn)
	if c == nil || c.closed {
		return gnet.None
	}
	c.closed = true
	c.mu.Lock()
	c.dead = true
	c.pend, c.frames = nil, 0
	c.mu.Unlock()
	c.out = nil

	reason := c.reason
	if reason == ClosePeer {
		if r := c.closeReq.Load(); r != 0 {
			reason = uint8(r - 1)
		} else if s.stopping.Load() {
			reason = CloseShutdown
		}
	}
	s.ctr.closes[reason].Add(1)
	s.ctr.connsOpen.Add(-1)
	s.release(c)
	if c.published {
		s.remove(c)
		s.sink.TCPClosed(c.peer)
	}
	return gnet.None
}

// OnTraffic delivers every complete frame in gnet's inbound buffer in place
// (Peek, Sink, Discard: no copy, no allocation); a partial frame stays
// buffered by gnet until the rest arrives.
func (h handler) OnTraffic(gc gnet.Conn) gnet.Action {
	s := h.s
	c, _ := gc.Context().(*conn)
	if c == nil || c.closed {
		return gnet.Close
	}
	buf, _ := gc.Peek(0) // everything buffered
	consumed, frames, bytes := 0, uint64(0), uint64(0)
	action := gnet.None
	for c.closeReq.Load() == 0 {
		frame, n, st := c.fr.next(buf[consumed:])
		if st == frameShort {
			break
		}
		if st != frameOK {
			c.reason, action = closeReasonOf(st), gnet.Close
			break
		}
		s.sink.TCPFrame(c.peer, frame)
		consumed += n
		frames++
		bytes += uint64(len(frame))
	}
	if c.closeReq.Load() != 0 {
		action = gnet.Close
	}
	if frames > 0 {
		c.loop.ctr.framesIn.Add(frames)
		c.loop.ctr.bytesIn.Add(bytes)
	}
	if consumed > 0 && action == gnet.None {
		_, _ = gc.Discard(consumed)
	}
	return action
}

func closeReasonOf(st frameStatus) uint8 {
	if st == frameNotBinding {
		return CloseNotBinding
	}
	return CloseBadLength
}
