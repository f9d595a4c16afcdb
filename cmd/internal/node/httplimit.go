package node

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Limit names of the HTTP server's own limits (fanout_limit_refusals_total).
const (
	limitHeaderSize   = "http_header_size"
	limitReadTimeout  = "http_read_timeout"
	limitWriteTimeout = "http_write_timeout"
	limitIdleTimeout  = "http_idle_timeout"
)

// server431 is what net/http writes, straight to the connection, when a
// request's header is over MaxHeaderBytes (net/http's conn.serve).
const server431 = "HTTP/1.1 431 Request Header Fields Too Large\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"431 Request Header Fields Too Large"

// httpLimit counts the limits that net/http enforces itself:
// limits.http_header_size (http.Server.MaxHeaderBytes) and
// http_read_timeout, http_write_timeout, http_idle_timeout (its
// deadlines). Go's server answers the 431 and cuts a connection past a
// deadline before any handler runs (or after it has returned), so
// httpapi's limiter never sees them; they are counted at the connection
// instead. Each HTTP listener's connections are wrapped (limitConn), which
// recognises the server's own 431 on Write and os.ErrDeadlineExceeded on
// Read and Write; http.Server.ConnState tells whose deadline it was: one
// set while the connection is new or idle is the server's (request,
// response, keep-alive), one set while a request is active or after a
// hijack is a handler's (HTTP-FLV's own write deadline, the wake-up of
// net/http's background read, a WebSocket's). A connection counts once.
// Over HTTPS the 431 is encrypted below the wrapper and is not counted;
// the timeouts are. Safe for concurrent use.
type httpLimit struct {
	header, read, write, idle atomic.Uint64
}

// listener wraps ln's connections; under TLS it goes below tls.NewListener
// (net/http needs its *tls.Conn unwrapped).
func (l *httpLimit) listener(ln net.Listener) net.Listener { return &limitListener{Listener: ln, l: l} }

// connState is the http.Server's ConnState hook.
func (l *httpLimit) connState(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*limitConn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive, http.StateHijacked:
		c.active.Store(true)
	case http.StateIdle:
		c.active.Store(false)
		c.quiet.Store(true)
	}
}

// refusals are the counts by limit name, for /metrics.
func (l *httpLimit) refusals() map[string]uint64 {
	return map[string]uint64{limitHeaderSize: l.header.Load(), limitReadTimeout: l.read.Load(),
		limitWriteTimeout: l.write.Load(), limitIdleTimeout: l.idle.Load()}
}

type limitListener struct {
	net.Listener
	l *httpLimit
}

func (ln *limitListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, l: ln.l}, nil
}

// limitConn is one HTTP connection under httpLimit. Read runs in net/http's
// background reader while the serving goroutine sets deadlines: the flags
// are atomic.
type limitConn struct {
	net.Conn
	l *httpLimit

	active   atomic.Bool // a request is being handled, or hijacked
	quiet    atomic.Bool // idle, and nothing read since
	rdServer atomic.Bool // the read deadline is the server's...
	rdIdle   atomic.Bool // ...and the keep-alive one
	wrServer atomic.Bool // the write deadline is the server's
	counted  atomic.Bool
}

func (c *limitConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.quiet.Load() {
		c.quiet.Store(false)
	}
	if err != nil && c.rdServer.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		if c.rdIdle.Load() {
			c.count(&c.l.idle)
		} else {
			c.count(&c.l.read)
		}
	}
	return n, err
}

func (c *limitConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if len(b) == len(server431) && string(b) == server431 {
		c.count(&c.l.header)
	}
	if err != nil && c.wrServer.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		c.count(&c.l.write)
	}
	return n, err
}

func (c *limitConn) SetDeadline(t time.Time) error {
	c.noteRead(t)
	c.noteWrite(t)
	return c.Conn.SetDeadline(t)
}

func (c *limitConn) SetReadDeadline(t time.Time) error {
	c.noteRead(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *limitConn) SetWriteDeadline(t time.Time) error {
	c.noteWrite(t)
	return c.Conn.SetWriteDeadline(t)
}

// CloseWrite keeps net/http's half-close (after its 431) working.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitConn) noteRead(t time.Time) {
	server := !t.IsZero() && !c.active.Load()
	c.rdServer.Store(server)
	c.rdIdle.Store(server && c.quiet.Load())
}

func (c *limitConn) noteWrite(t time.Time) { c.wrServer.Store(!t.IsZero() && !c.active.Load()) }

func (c *limitConn) count(n *atomic.Uint64) {
	if c.counted.CompareAndSwap(false, true) {
		n.Add(1)
	}
}
