package bench

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// handshakeConn is the net.PacketConn a pion/dtls client runs its handshake
// over. It never reads the socket: the subscriber's reader loop owns the fd
// and hands DTLS records in through a channel. Writes go straight to the
// connected fd until the handshake is over; then the conn is muted (so the
// close_notify of dtls.Conn.Close never reaches the server) and closed,
// which ends the DTLS goroutines without touching the fd.
type handshakeConn struct {
	fd     int
	raddr  net.Addr
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	muted  atomic.Bool

	mu       sync.Mutex
	deadline time.Time
	kick     chan struct{}
}

func newHandshakeConn(fd int, raddr net.Addr) *handshakeConn {
	return &handshakeConn{
		fd:     fd,
		raddr:  raddr,
		in:     make(chan []byte, 16),
		closed: make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
}

// deliver queues a copy of a DTLS record; it drops when the queue is full.
func (c *handshakeConn) deliver(p []byte) {
	select {
	case c.in <- append([]byte(nil), p...):
	default:
	}
}

func (c *handshakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl := c.deadline
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case p := <-c.in:
			return copy(b, p), c.raddr, nil
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case <-c.kick:
		case <-timeout:
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
}

func (c *handshakeConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	if c.muted.Load() {
		return len(p), nil
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	n, err := unix.Write(c.fd, p)
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ECONNREFUSED):
		// A datagram a local firewall rule dropped (nftables answers
		// EPERM), a full queue, or an ICMP error from an earlier send:
		// lost, as on a network; DTLS retransmits.
		return len(p), nil
	case err != nil:
		return 0, err
	}
	return n, nil
}

// Close stops reads; it does not close the fd.
func (c *handshakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *handshakeConn) LocalAddr() net.Addr { return &net.UDPAddr{} }

func (c *handshakeConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

func (c *handshakeConn) SetWriteDeadline(time.Time) error { return nil }
