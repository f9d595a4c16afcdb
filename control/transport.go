package control

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
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
	return len(p), nil
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
