package fastpath

import (
	"net/netip"

	"github.com/fanout/fanout/fastpath/route"
)

// WebRTC over TCP (RFC 6544, RFC 4571) reaches the fastpath through a
// TCPTransport (package fastpath/tcpio, on gnet event loops). A TCP peer has a
// pseudo-address (route.TCPPeer), so route tables, upcalls and control treat
// it like any other peer and it can never equal a UDP peer's address. Egress to such a peer is framed and coalesced
// by the transport; the cores call Write per packet and Flush once a round.

// TCPTransport is what the fastpath needs of the TCP side.
type TCPTransport interface {
	// Write frames pkt for peer's connection; false if it is gone or full.
	Write(peer netip.AddrPort, pkt []byte) bool
	// Flush pushes every connection's pending frames.
	Flush()
}

// AttachTCP connects the TCP transport; call it before Start.
func (e *Engine) AttachTCP(t TCPTransport) { e.tcp = t }

// TCPFrame takes one frame from a TCP connection (tcpio.Sink): STUN and DTLS
// go up to control like datagrams, SRTP and SRTCP go to the owner core of
// the peer's session.
func (e *Engine) TCPFrame(peer netip.AddrPort, frame []byte) {
	c := e.cores[0] // counts frames that never reach a core
	cls := Classify(frame)
	if cls == ClassGarbage {
		c.cnt.drops[DropGarbage].Add(1)
		return
	}
	t := e.table.Load()
	s := t.Lookup(peer)
	var sid route.SessionID
	if s != nil {
		sid = s.ID
	}
	switch {
	case cls == ClassSTUN:
		e.upcall(c, route.UpSTUN, sid, peer, frame)
	case s == nil:
		c.cnt.drops[DropUnknownPeer].Add(1)
	case cls == ClassDTLS:
		e.upcall(c, route.UpDTLS, sid, peer, frame)
	default:
		e.injectWire(s, frame)
	}
}

// TCPClosed tells control a TCP peer is gone (tcpio.Sink).
func (e *Engine) TCPClosed(peer netip.AddrPort) {
	var sid route.SessionID
	if s := e.table.Load().Lookup(peer); s != nil {
		sid = s.ID
	}
	e.upcall(e.cores[0], route.UpTCPClosed, sid, peer, nil)
}

// inboxWire is a bridge-queue op: an SRTP/SRTCP frame that arrived on a TCP
// connection, handled by the owner core like a datagram of its session.
const inboxWire uint8 = 16

// injectWire queues an SRTP/SRTCP frame from a TCP peer for the owner core
// through its bounded multi-producer queue (the gnet loops are producers).
func (e *Engine) injectWire(s *route.Session, frame []byte) {
	if e.stop.Load() || len(frame) > bridgeMTU {
		e.cores[0].cnt.drops[DropNotReady].Add(1)
		return
	}
	e.br.inflight.Add(1)
	defer e.br.inflight.Add(-1)
	owner := e.ownerOf(s)
	slot, pos := e.br.inboxes[owner].claim()
	if slot == nil {
		e.cores[0].cnt.drops[DropRingFull].Add(1)
		return
	}
	slot.op, slot.sid, slot.n = inboxWire, s.ID, uint16(copy(slot.buf[:], frame))
	slot.publish(pos)
	if c := e.cores[owner]; e.cfg.WakeTimeout == 0 && c.sleeping.CompareAndSwap(true, false) {
		c.waker.Wake()
	}
}

// onWire handles a TCP frame of a session this core owns.
func (c *core) onWire(sid route.SessionID, b []byte) {
	s := c.tbl.Session(sid)
	if s == nil || c.e.ownerOf(s) != c.id {
		c.cnt.drops[DropUnknownPeer].Add(1)
		return
	}
	c.lc.rxPackets++
	c.lc.rxBytes += uint64(len(b))
	c.handleOwned(s, b, Classify(b))
}
