package control

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/control/dtlsguard"
)

// dtlsTransport is the net.PacketConn pion/dtls runs over: records arrive
// from the fastpath's upcall ring, and writes go out through the fastpath's
// socket to the session's current address (the latest STUN binding, so DTLS
// follows a NAT rebinding too).
type dtlsTransport struct {
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	send   func(b []byte, to netip.AddrPort) error
	peer   func() netip.AddrPort
	sent   dtlsSent // for control's own alerts (dtlscheck.go)
	// server: Fanout is the DTLS server (set before the handshake starts);
	// its final flight is sent again (repeatFinal).
	server   bool
	repeated atomic.Bool

	mu       sync.Mutex
	deadline time.Time
	wake     chan struct{}
}

func newDTLSTransport(send func([]byte, netip.AddrPort) error, peer func() netip.AddrPort) *dtlsTransport {
	return &dtlsTransport{
		in:     make(chan []byte, 64),
		closed: make(chan struct{}),
		send:   send,
		peer:   peer,
		wake:   make(chan struct{}, 1),
	}
}

// deliver queues a record; a full queue drops it (DTLS retransmits).
func (t *dtlsTransport) deliver(b []byte) bool {
	select {
	case t.in <- append([]byte(nil), b...):
		return true
	default:
		return false
	}
}

func (t *dtlsTransport) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		t.mu.Lock()
		dl := t.deadline
		t.mu.Unlock()
		var timeout <-chan time.Time
		var tm *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			tm = time.NewTimer(d)
			timeout = tm.C
		}
		n, again, err := t.wait(p, timeout)
		if tm != nil {
			tm.Stop()
		}
		if !again {
			return n, t.remoteAddr(), err
		}
	}
}

// wait takes one record, or reports a close, a timeout or a changed
// deadline (again: read the deadline and wait once more).
func (t *dtlsTransport) wait(p []byte, timeout <-chan time.Time) (n int, again bool, err error) {
	select {
	case b := <-t.in:
		return copy(p, b), false, nil
	case <-t.closed:
		return 0, false, net.ErrClosed
	case <-timeout:
		return 0, false, os.ErrDeadlineExceeded
	case <-t.wake:
		return 0, true, nil
	}
}

func (t *dtlsTransport) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-t.closed:
		return 0, net.ErrClosed
	default:
	}
	// A refused send (EPERM from a firewall drop, ENOBUFS, unreachable) is a
	// lost datagram to DTLS, which retransmits (RFC 6347 §4.2.4); returning
	// the error would abort the handshake.
	t.sent.note(p)
	_ = t.send(p, t.peer())
	if t.server && hasChangeCipherSpec(p) && !t.repeated.Swap(true) {
		t.repeatFinal(p)
	}
	return len(p), nil
}

// finalRepeats are when the DTLS server's final flight (ChangeCipherSpec,
// Finished: one datagram at MTU 1200) goes out again. That flight has no
// timer of its own (RFC 6347 §4.2.4): lost, it is recovered only when the
// client's timer resends the client's Finished, 1 s later in pion and
// OpenSSL. A client that has the flight drops the copies (record replay
// window, §4.1.2.6), as it drops any duplicated datagram.
var finalRepeats = [...]time.Duration{30 * time.Millisecond, 100 * time.Millisecond}

func (t *dtlsTransport) repeatFinal(p []byte) {
	b := append([]byte(nil), p...)
	for _, d := range finalRepeats {
		time.AfterFunc(d, func() {
			select {
			case <-t.closed:
			default:
				_ = t.send(b, t.peer())
			}
		})
	}
}

// hasChangeCipherSpec reports whether a datagram of DTLS records holds a
// ChangeCipherSpec record.
func hasChangeCipherSpec(d []byte) bool {
	for len(d) >= dtlsguard.RecordHeaderLen {
		if d[0] == dtlsguard.ContentChangeCipherSpec {
			return true
		}
		d = d[min(len(d), dtlsguard.RecordHeaderLen+int(binary.BigEndian.Uint16(d[11:13]))):]
	}
	return false
}

func (t *dtlsTransport) remoteAddr() net.Addr { return net.UDPAddrFromAddrPort(t.peer()) }

func (t *dtlsTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

func (t *dtlsTransport) LocalAddr() net.Addr { return &net.UDPAddr{} }

func (t *dtlsTransport) SetDeadline(d time.Time) error { return t.SetReadDeadline(d) }

func (t *dtlsTransport) SetReadDeadline(d time.Time) error {
	t.mu.Lock()
	t.deadline = d
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

func (t *dtlsTransport) SetWriteDeadline(time.Time) error { return nil }
