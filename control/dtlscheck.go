package control

import (
	"net/netip"
	"sync/atomic"

	"github.com/fanout/fanout/control/dtlsguard"
)

// checkDTLS validates a datagram from ss's peer before pion/dtls reads it
// (package dtlsguard says why pion alone would wait for the handshake
// timeout). A malformed one gets a fatal alert, sent to where it came from,
// and ends the session at once, as SRS (OpenSSL) does; RFC 6347 §4.1.2.7
// allows this in place of a silent discard, with fatal alerts only. It
// reports whether the datagram may go on to pion.
//
// Only plaintext handshake records (epoch 0) can be checked, and only
// until the handshake is done: after that a forged datagram from the
// peer's address must not end a live session, and pion drops it.
func (s *Server) checkDTLS(ss *session, from netip.AddrPort, b []byte) bool {
	p := dtlsguard.Check(b)
	if p.Fault == dtlsguard.OK {
		return true
	}
	s.mu.Lock()
	done := ss.keys != nil || ss.ended
	s.mu.Unlock()
	if done {
		return true
	}
	alert := p.Fault.Alert()
	var buf [dtlsguard.RecordHeaderLen + 2]byte
	_ = ss.transport.send(dtlsguard.AppendAlert(buf[:0], ss.transport.sent.next.Load(), alert), from)
	s.end(ss, "dtls malformed: "+p.String()+" (sent "+alert.String()+")")
	return false
}

// dtlsSent follows the epoch-0 record sequence numbers pion writes on a
// transport, so that control's own alert record comes after them: a peer
// drops a record whose number it has seen (RFC 6347 §4.1.2.6).
type dtlsSent struct{ next atomic.Uint64 }

func (d *dtlsSent) note(p []byte) {
	seq, ok := dtlsguard.MaxSeq(p, 0)
	for ok {
		cur := d.next.Load()
		if seq < cur || d.next.CompareAndSwap(cur, seq+1) {
			return
		}
	}
}
