// Package fastpath forwards SRTP media: it owns the WebRTC UDP port, sorts
// each datagram (RFC 7983), decrypts what publishers send once, and rewrites,
// encrypts and sends a copy to every player of the stream.
//
// Who imports it: control (through Engine and the route contract) and cmd.
// It imports only the standard library, x/sys, pion/srtp, pion/rtp and
// pion/rtcp: no logging, no net/http, no control or config packages.
//
// Concurrency contract: control publishes immutable route.Tables with
// Engine.Publish; each core loop loads the table once per receive batch and
// owns all mutable per-session state (SRTP contexts, rewrite offsets). What
// control must see (STUN, DTLS records) goes up through a bounded channel of
// pooled buffers; when it is full the datagram is dropped and counted. The
// fastpath never blocks on control.
package fastpath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/udpio"
)

// Config tunes an Engine.
type Config struct {
	Addr        netip.AddrPort // listen address; port 0 picks one (tests)
	Batch       int            // recvmmsg/sendmmsg batch size, default 64
	UpcallDepth int            // bounded ring to control, default 1024
	SockBuf     int            // socket buffer bytes, default 16 MiB (SRS asks for 10 MB)
}

// UpcallKind says what an Upcall carries.
type UpcallKind uint8

// Upcall kinds.
const (
	UpSTUN UpcallKind = iota + 1
	UpDTLS
)

// Upcall is a datagram handed to control. Data is valid until Release.
type Upcall struct {
	Kind    UpcallKind
	Session route.SessionID // 0 when the source address is not bound yet
	From    netip.AddrPort
	Data    []byte
	buf     *[udpio.MaxDatagram]byte
}

// Engine is the fastpath: its sockets, its core loops and their counters.
type Engine struct {
	cfg     Config
	conn    *udpio.Conn
	table   atomic.Pointer[route.Table]
	upcalls chan Upcall
	free    chan *[udpio.MaxDatagram]byte
	cores   []*core
	stop    atomic.Bool
	wg      sync.WaitGroup
	started time.Time
}

// ErrClosed is returned by WriteTo after Close.
var ErrClosed = errors.New("fastpath: closed")

// New opens the socket; Start runs the loops.
func New(cfg Config) (*Engine, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.UpcallDepth <= 0 {
		cfg.UpcallDepth = 1024
	}
	if cfg.SockBuf == 0 {
		cfg.SockBuf = 16 << 20
	}
	conn, err := udpio.Listen(udpio.Options{Addr: cfg.Addr, ReusePort: true, BufBytes: cfg.SockBuf,
		ReadTimeout: tickInterval})
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	e := &Engine{
		cfg:     cfg,
		conn:    conn,
		upcalls: make(chan Upcall, cfg.UpcallDepth),
		free:    make(chan *[udpio.MaxDatagram]byte, cfg.UpcallDepth),
		started: time.Now(),
	}
	for range cfg.UpcallDepth {
		e.free <- new([udpio.MaxDatagram]byte)
	}
	e.table.Store(route.Empty)
	e.cores = []*core{newCore(e, 0, conn)}
	return e, nil
}

// Port returns the bound UDP port.
func (e *Engine) Port() int { return e.conn.Port() }

// Start runs one loop per core.
func (e *Engine) Start() {
	for _, c := range e.cores {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			c.run()
		}()
	}
}

// Close stops the loops, waits for them and closes the socket.
func (e *Engine) Close() error {
	if e.stop.Swap(true) {
		return nil
	}
	e.conn.Shutdown()
	e.wg.Wait()
	return e.conn.Close()
}

// Publish installs a new route table; cores pick it up at their next batch.
func (e *Engine) Publish(t *route.Table) { e.table.Store(t) }

// Table returns the table currently published.
func (e *Engine) Table() *route.Table { return e.table.Load() }

// Upcalls is the ring control reads STUN and DTLS datagrams from.
func (e *Engine) Upcalls() <-chan Upcall { return e.upcalls }

// Release returns an Upcall's buffer to the pool.
func (e *Engine) Release(u Upcall) {
	if u.buf != nil {
		e.free <- u.buf
	}
}

// WriteTo sends one datagram from the media port (STUN responses, DTLS
// records). It may be called from any goroutine.
func (e *Engine) WriteTo(b []byte, to netip.AddrPort) error {
	if e.stop.Load() {
		return ErrClosed
	}
	return e.conn.WriteTo(b, to)
}

// Stats sums the counters of all cores.
func (e *Engine) Stats() Stats {
	var s Stats
	for _, c := range e.cores {
		s.Add(c.cnt.snapshot())
	}
	return s
}

// CoreStats returns each core's counters.
func (e *Engine) CoreStats() []Stats {
	out := make([]Stats, len(e.cores))
	for i, c := range e.cores {
		out[i] = c.cnt.snapshot()
	}
	return out
}

// upcall hands a copy of b to control, or drops it when the ring is full.
func (e *Engine) upcall(c *core, k UpcallKind, sid route.SessionID, from netip.AddrPort, b []byte) {
	var buf *[udpio.MaxDatagram]byte
	select {
	case buf = <-e.free:
	default:
		c.cnt.drops[DropUpcallFull].Add(1)
		return
	}
	n := copy(buf[:], b)
	select {
	case e.upcalls <- Upcall{Kind: k, Session: sid, From: from, Data: buf[:n], buf: buf}:
	default:
		e.free <- buf
		c.cnt.drops[DropUpcallFull].Add(1)
	}
}
