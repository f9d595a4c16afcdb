package fastpath

import "github.com/fanout/fanout/fastpath/xskio"

// AF_XDP mode (`xdp_mode afxdp`, issue 16): a core given an xskio.Port
// reads its sessions' RTP and RTCP from the port's RX ring as well as its
// socket, through the same handle as a recvmmsg batch, and flushes its out
// batch onto the port's TX ring instead of sendmmsg. Everything else
// (STUN, DTLS, TCP, control's writes) still uses the sockets: the XDP
// program redirects only sessions' media. A core without a port runs the
// socket path alone.

// AttachXSK gives core its AF_XDP port. Call it before Start; cmd wires
// one port per RX queue of the XDP interface (bpf.XSK, xskio.NewPort).
func (e *Engine) AttachXSK(core int, p *xskio.Port) {
	c := e.cores[core]
	c.xsk = p
	c.waker.Watch(p.FD())
}

// XSKStats is each core's AF_XDP counters; ok[i] is false for a core
// without a port.
func (e *Engine) XSKStats() (stats []xskio.Stats, ok []bool) {
	stats, ok = make([]xskio.Stats, len(e.cores)), make([]bool, len(e.cores))
	for i, c := range e.cores {
		if c.xsk != nil {
			stats[i], ok[i] = c.xsk.Stats(), true
		}
	}
	return stats, ok
}

// recvXSK handles the frames waiting on the core's RX ring, as
// handleBatch handles a socket batch, and returns how many it took.
func (c *core) recvXSK() int {
	if c.xsk == nil {
		return 0
	}
	n := c.xsk.Recv()
	if n == 0 {
		return 0
	}
	c.cnt.batches.Add(1)
	for i := range n {
		if b, from, ok := c.xsk.Datagram(i); ok {
			c.handle(b, from)
		}
	}
	c.xsk.Done() // handle copied what it keeps (slab, upcall, hand-off)
	return n
}
