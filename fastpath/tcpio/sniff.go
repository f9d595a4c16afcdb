package tcpio

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// sniffTimeout bounds the wait for a connection's first bytes on a shared
	// port. Browsers (ICE-TCP), HTTP clients and TLS clients all speak first;
	// a connection still silent after it goes to the HTTP side, which has its
	// own timeouts.
	sniffTimeout = 3 * time.Second
	maxBackoff   = time.Second
)

// Sniff shares one listener between WebRTC over TCP and HTTP(S), as SRS does
// when rtc_server.tcp.listen equals the HTTP port. It accepts from ln and
// peeks (MSG_PEEK: nothing is consumed) at each connection's first bytes: an
// RFC 4571 framed STUN Binding Request is enrolled into s; everything else
// (HTTP, TLS, silence) is returned by the listener's Accept, from byte 0, for
// http.Server.Serve or ServeTLS. Closing the returned listener closes ln.
func Sniff(ln net.Listener, s *Server) net.Listener {
	sl := &sniffListener{
		ln:      ln,
		s:       s,
		conns:   make(chan net.Conn),
		stop:    make(chan struct{}),
		pending: make(map[net.Conn]struct{}),
	}
	sl.wg.Add(1)
	go sl.acceptLoop()
	return sl
}

type sniffListener struct {
	ln    net.Listener
	s     *Server
	conns chan net.Conn // non-WebRTC connections for Accept
	wg    sync.WaitGroup

	stopOnce sync.Once
	stop     chan struct{} // closed when accepting ends (Close or ln failed)
	err      error         // why; readable after stop is closed

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // connections being sniffed
}

// Accept returns the next connection that is not WebRTC over TCP.
func (sl *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-sl.conns:
		return c, nil
	case <-sl.stop:
		return nil, sl.err
	}
}

// Addr is the shared listener's address.
func (sl *sniffListener) Addr() net.Addr { return sl.ln.Addr() }

// Close closes ln, abandons connections still being sniffed and waits for
// the listener's goroutines. Connections already enrolled or accepted live on.
func (sl *sniffListener) Close() error {
	sl.finish(net.ErrClosed)
	err := sl.ln.Close()
	sl.mu.Lock()
	sl.closed = true
	for c := range sl.pending {
		_ = c.SetReadDeadline(time.Unix(1, 0)) // wake the peek now
	}
	sl.mu.Unlock()
	sl.wg.Wait()
	return err
}

func (sl *sniffListener) finish(err error) {
	sl.stopOnce.Do(func() {
		sl.err = err
		close(sl.stop)
	})
}

func (sl *sniffListener) acceptLoop() {
	defer sl.wg.Done()
	var delay time.Duration
	for {
		c, err := sl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				sl.finish(err)
				return
			}
			// EMFILE and friends: back off as net/http does, then retry.
			delay = min(max(2*delay, 5*time.Millisecond), maxBackoff)
			select {
			case <-time.After(delay):
				continue
			case <-sl.stop:
				return
			}
		}
		delay = 0
		if !sl.track(c) {
			_ = c.Close()
			return
		}
		sl.wg.Add(1)
		go sl.route(c)
	}
}

func (sl *sniffListener) track(c net.Conn) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		return false
	}
	sl.pending[c] = struct{}{}
	return true
}

func (sl *sniffListener) untrack(c net.Conn) {
	sl.mu.Lock()
	delete(sl.pending, c)
	sl.mu.Unlock()
}

// route sends one accepted connection to the WebRTC or the HTTP side.
func (sl *sniffListener) route(c net.Conn) {
	defer sl.wg.Done()
	v := peekClassify(c, sniffTimeout)
	sl.untrack(c)
	if v == sniffWebRTC {
		_ = sl.s.Enroll(c) // closes c on failure
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	select {
	case sl.conns <- c:
	case <-sl.stop:
		_ = c.Close()
	}
}

// peekClassify peeks (MSG_PEEK) until classify can decide, the peer closes,
// or timeout passes; anything undecided counts as not WebRTC.
func peekClassify(c net.Conn, timeout time.Duration) sniffVerdict {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return sniffOther
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return sniffOther
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return sniffOther
	}
	var head [sniffHeaderBytes]byte
	verdict := sniffOther
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), head[:], unix.MSG_PEEK)
		switch {
		case rerr == unix.EAGAIN || rerr == unix.EINTR:
			return false // wait for readability
		case rerr != nil || n == 0:
			return true // error or EOF: not WebRTC
		}
		verdict = classify(head[:n])
		// Too few bytes to decide: report "not ready" so the runtime poller
		// (edge-triggered) parks us until more bytes arrive or the deadline.
		return verdict != sniffMore
	})
	if err != nil || verdict == sniffMore {
		return sniffOther
	}
	return verdict
}
