package xskio

import (
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/udpio"
)

// Socket is an AF_XDP socket's rings over its UMEM; bpf.XSK implements it
// (see its methods for the contract). Only Statistics may be called from
// another goroutine than the owner's.
type Socket interface {
	FD() int
	UMEM() []byte
	Receive(descs []unix.XDPDesc) int
	Refill(descs []unix.XDPDesc)
	TXFrame() (addr uint64, ok bool)
	Release(addr uint64)
	Transmit(descs []unix.XDPDesc) int
	Kick() int
	Statistics() (unix.XDPStatistics, error)
}

// Port is one core's AF_XDP socket: its receive batch and its transmit
// side.
type Port struct {
	s         Socket
	umem      []byte
	frameSize int
	hops      *Hops
	port      uint16 // the RTC port, the UDP source of every frame sent
	rx        []unix.XDPDesc
	rxN       int
	tx        []unix.XDPDesc
	txN       int
	lost      int // frames this Flush's pushes lost to a full TX ring
	cnt       struct {
		rx, tx, rxInvalid, kicks, compStalls, txFull, fallbacks, txDropped atomic.Uint64
	}
}

// Stats is a Port's counters, and the kernel's for its socket.
type Stats struct {
	RxFrames  uint64 // frames read from the RX ring
	TxFrames  uint64 // frames put on the TX ring
	RxInvalid uint64 // frames that were no IPv4 or IPv6 UDP (dropped)
	Kicks     uint64 // sendto calls that told the kernel to transmit
	// CompletionStalls counts times every TX frame was in flight;
	// TxRingFull frames the TX ring refused (both dropped).
	CompletionStalls, TxRingFull, TxDropped uint64
	// Fallbacks counts datagrams sent through the socket instead: no
	// resolved neighbour yet, or a route out of another interface.
	Fallbacks uint64
	// The kernel's (XDP_STATISTICS): frames it dropped for want of a fill
	// ring frame (FillStalls) or RX ring room, or otherwise.
	FillStalls, RxRingFull, RxDropped uint64
}

// NewPort drives s for a core: batch frames per receive, frameSize bytes
// per UMEM frame, egress from UDP port localPort, next hops from hops.
func NewPort(s Socket, hops *Hops, localPort uint16, batch, frameSize int) *Port {
	if batch <= 0 {
		batch = 64
	}
	return &Port{
		s: s, umem: s.UMEM(), frameSize: frameSize, hops: hops, port: localPort,
		rx: make([]unix.XDPDesc, batch),
		tx: make([]unix.XDPDesc, 2048),
	}
}

// FD is the socket, for the core's poll.
func (p *Port) FD() int { return p.s.FD() }

// Recv takes up to a batch of frames from the RX ring and returns how
// many; Datagram reads each, Done gives them back to the kernel.
func (p *Port) Recv() int {
	p.rxN = p.s.Receive(p.rx)
	if p.rxN > 0 {
		p.cnt.rx.Add(uint64(p.rxN))
	}
	return p.rxN
}

// Datagram is frame i's UDP payload (writable, inside the UMEM until
// Done) and source; ok is false (and counted) for a frame that is no
// IPv4 or IPv6 UDP.
func (p *Port) Datagram(i int) ([]byte, netip.AddrPort, bool) {
	d := p.rx[i]
	b, from, ok := parseUDP(p.umem[d.Addr : d.Addr+uint64(d.Len)])
	if !ok {
		p.cnt.rxInvalid.Add(1)
	}
	return b, from, ok
}

// Done hands the last Recv's frames back to the fill ring.
func (p *Port) Done() {
	p.s.Refill(p.rx[:p.rxN])
	p.rxN = 0
}

// Flush sends o's datagrams as frames on the TX ring and empties o. A
// message whose destination has no resolved next hop on this interface
// goes out through c instead (sendmsg, counted as Fallbacks). It returns
// the datagrams sent and dropped.
func (p *Port) Flush(o *udpio.Out, c *udpio.Conn) (sent, dropped int) {
	for i := range o.N {
		b, seg, dst := o.Msg(i)
		hop, ok := p.hops.Lookup(dst.Addr())
		if !ok || !hop.OK || headerLen(dst.Addr())+seg > p.frameSize {
			s, d := o.SendOne(c, i)
			p.cnt.fallbacks.Add(uint64(s + d))
			sent, dropped = sent+s, dropped+d
			continue
		}
		s, d := p.queue(b, seg, &hop, dst)
		sent, dropped = sent+s, dropped+d
	}
	p.push()
	p.kick()
	o.Reset()
	lost := p.lost
	p.lost = 0
	return sent - lost, dropped + lost
}

// queue writes each datagram of b (seg bytes each, the last may be
// shorter) into a TX frame behind its headers.
func (p *Port) queue(b []byte, seg int, hop *Hop, dst netip.AddrPort) (sent, dropped int) {
	hl := headerLen(dst.Addr())
	for off := 0; off < len(b); off += seg {
		n := min(seg, len(b)-off)
		addr, ok := p.frame()
		if !ok {
			p.cnt.compStalls.Add(1)
			left := (len(b) - off + seg - 1) / seg
			p.cnt.txDropped.Add(uint64(left))
			return sent, dropped + left
		}
		f := p.umem[addr : addr+uint64(hl+n)]
		copy(f[hl:], b[off:off+n])
		writeHeaders(f, hop, p.port, dst)
		p.tx[p.txN] = unix.XDPDesc{Addr: addr, Len: uint32(hl + n)}
		p.txN++
		sent++
	}
	return sent, dropped
}

// frame takes a free TX frame, sending what is queued first when the
// descriptor batch is full or every frame is in flight.
func (p *Port) frame() (uint64, bool) {
	if p.txN == len(p.tx) {
		p.push()
		p.kick()
	}
	if a, ok := p.s.TXFrame(); ok {
		return a, true
	}
	if p.txN > 0 {
		p.push()
		p.kick()
	}
	return p.s.TXFrame()
}

// push puts the queued descriptors on the TX ring; those that do not fit
// are released and counted.
func (p *Port) push() {
	if p.txN == 0 {
		return
	}
	n := p.s.Transmit(p.tx[:p.txN])
	p.cnt.tx.Add(uint64(n))
	lost := p.txN - n
	for _, d := range p.tx[n:p.txN] {
		p.s.Release(d.Addr)
	}
	if lost > 0 {
		p.cnt.txFull.Add(uint64(lost))
		p.cnt.txDropped.Add(uint64(lost))
		p.lost += lost
	}
	p.txN = 0
}

func (p *Port) kick() {
	if k := p.s.Kick(); k > 0 {
		p.cnt.kicks.Add(uint64(k))
	}
}

// Stats snapshots the counters; safe from any goroutine.
func (p *Port) Stats() Stats {
	s := Stats{
		RxFrames: p.cnt.rx.Load(), TxFrames: p.cnt.tx.Load(), RxInvalid: p.cnt.rxInvalid.Load(),
		Kicks: p.cnt.kicks.Load(), CompletionStalls: p.cnt.compStalls.Load(), TxRingFull: p.cnt.txFull.Load(),
		TxDropped: p.cnt.txDropped.Load(), Fallbacks: p.cnt.fallbacks.Load(),
	}
	if k, err := p.s.Statistics(); err == nil {
		s.FillStalls, s.RxRingFull = k.Rx_fill_ring_empty_descs, k.Rx_ring_full
		s.RxDropped = k.Rx_dropped + k.Rx_invalid_descs
	}
	return s
}
