// Package fastpath forwards SRTP media: it owns the WebRTC UDP port, sorts
// each datagram (RFC 7983), decrypts what publishers send once, and rewrites,
// encrypts and sends a copy to every player of the stream.
//
// Who imports it: cmd (which hands the Engine to control through control's
// own Fastpath interface) and bench. Control imports only fastpath/route,
// the whole contract, so it builds without the Linux socket code. This
// package imports only the standard library, x/sys, pion/srtp, pion/rtp,
// pion/rtcp and its own sub-packages (a depguard allow list in
// .golangci.yml): no logging, no net/http, no control, config or bpf
// packages (cmd wires the bpf steering program in through Config.Steer).
//
// Files: engine.go (Engine, Config, upcalls), core.go (the per-core loop,
// receive → deliver), send.go (scatter → flush), sync.go (adopting a new
// route table), publisher.go and player.go (media quality on each side),
// pace.go and replayfar.go (the paced GOP replay to a joining player, of
// the publisher's core and of another), resend.go (NACK resend guards),
// rtcp.go (RTCP in, PLI out), qstats.go (the quality board), queues.go
// (slab, core rings, inboxes, tap rings), rings.go (a core pushing to and
// draining those rings, buffers going home), inbox.go (Inject,
// RequestKeyframe), tap.go (rtc_to_rtmp taps), tcp.go (frames from
// fastpath/tcpio), demux.go (RFC 7983), stats.go (counters), layers.go
// and layerauto.go (simulcast, the per-player layer estimator), svc.go and
// svcav1.go (temporal layers of VP9 and of AV1 by its dependency
// descriptor, fastpath/av1dd).
//
// Shape (DESIGN.md "Cores and fan-out"): one loop per core, each locked to
// its OS thread and pinned to one CPU of the process's affinity mask, each
// with its own SO_REUSEPORT socket of one reuseport group, its own packet
// slab and preallocated recvmmsg/sendmmsg arrays. A session is owned by one
// core (route.Session.Core, chosen by control and written in the ICE ufrag);
// a datagram that lands on another core (kernel hash, no BPF) is handed to
// the owner through a ring. A publisher's packet is decrypted once on its
// owner; a reference to the plaintext goes through bounded single-producer
// rings to every other core with players of the stream, and each core
// rewrites, encrypts and sends for its own players, chaining each player's
// packets of one batch into UDP GSO sends. A core that has the first
// packets of a video frame reads on for the rest (Config.FrameWait) so the
// frame goes out whole. Egress RTP is protected by fastpath/srtpx (keyed
// once per session, no per-packet allocation); pion/srtp decrypts ingress
// and handles SRTCP.
//
// Concurrency contract: control publishes immutable route.Tables with
// Engine.Publish; each core loads the table once per batch and owns all
// mutable per-session state of the sessions it owns. Consent refreshes (STUN
// from a session's current UDP address) are answered on the core that
// receives them (fastpath/stunx, route.Session.Seen). What control must see
// (other STUN, DTLS records) goes up through a bounded channel of pooled buffers;
// every queue is bounded, and a full one is a counted drop. The fastpath
// never blocks on control or on another core.
package fastpath

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/srtpx"
	"github.com/fanout/fanout/fastpath/udpio"
)

// Config tunes an Engine. The zero value of every field is a usable default.
type Config struct {
	Addr  netip.AddrPort // listen address; port 0 picks one (tests)
	Cores int            // loops; 0 = one per CPU in the affinity mask (`cores auto`)
	Batch int            // recvmmsg batch and sendmmsg granularity, default 64
	GSO   bool           // UDP GSO for per-player runs, when the kernel has it (`gso on`)
	// BPF is `bpf auto|on|off`: whether Steer is called, and whether its
	// failure is fatal (on) or falls back to the kernel's hash (auto, "").
	BPF string
	// Steer attaches the ufrag steering program to the reuseport group;
	// fds[i] is core i's socket. cmd wires bpf.AttachUfragSteering here.
	Steer       func(fds []int) (io.Closer, error)
	UpcallDepth int // bounded ring to control, default 1024
	SockBuf     int // socket buffer bytes, default 16 MiB (SRS asks for 10 MB)
	RingDepth   int // messages per core-to-core ring, default 4096 (a cross-core GOP replay may use half)
	SlabPackets int // packet buffers per core, default 4096
	// WakeTimeout, when set, replaces eventfd wake-ups: an idle core polls
	// its rings every WakeTimeout (the measured alternative; see
	// bench/results/fastpath-gotest.md).
	WakeTimeout time.Duration
	// FrameWait is how long a core that has received the first packets of
	// a video frame (RTP marker bit clear) keeps reading for the rest of
	// the frame before fanning it out, so each player gets the whole frame
	// in one GSO send instead of a lone first packet and then the others.
	// Publishers send a frame's packets back to back, so the wait ends as
	// soon as the marker arrives; FrameWait bounds it. Default 50 µs
	// (DefaultFrameWait); negative turns it off.
	FrameWait time.Duration
	// ReplayMaxAge and ReplayMaxBytes bound the GOP replay to a joining
	// player: a cached GOP whose keyframe is older, or that is larger, is
	// not replayed (the player waits for the fresh keyframe its join asks
	// the publisher for, coalesced with other joins), because a long burst
	// of stale video overflows a default socket buffer and starts a NACK
	// storm. Defaults DefaultReplayMaxAge and DefaultReplayMaxBytes;
	// negative turns the bound off.
	ReplayMaxAge   time.Duration
	ReplayMaxBytes int
	// BridgeDepth is the per-core queue of Inject and RequestKeyframe,
	// default 512 (inbox.go).
	BridgeDepth int
}

// DefaultFrameWait is Config.FrameWait's default.
const DefaultFrameWait = 50 * time.Microsecond

// Defaults of Config.ReplayMaxAge and ReplayMaxBytes: two seconds of video
// at up to 4 Mbps (issue 15: an aiortc GOP of many seconds, 603 packets
// replayed at once, overflowed a 212 KB socket buffer).
const (
	DefaultReplayMaxAge   = 2 * time.Second
	DefaultReplayMaxBytes = 1 << 20
)

// MaxCores is the most loops an Engine runs (the per-stream core mask is 64
// bits; a ufrag could name route.MaxUfragCore).
const MaxCores = 64

// Status is how the engine came up, for one log line in cmd.
type Status struct {
	Cores    int
	CPUs     []int // CPU each core is pinned to
	GSO      bool  // UDP GSO in use
	BPF      bool  // the SK_REUSEPORT steering program is attached
	Steering string
	// ZeroAllocCM is false when AES-CM egress cannot reuse its AES-CTR
	// state on this Go release and allocates one per packet (srtpx).
	ZeroAllocCM bool
}

// Engine is the fastpath: its sockets, its core loops and their counters.
type Engine struct {
	cfg     Config
	tcp     TCPTransport // nil unless WebRTC over TCP is on
	conns   []*udpio.Conn
	cores   []*core
	rings   [][]*ring // rings[from][to]: fan-out, hand-offs, keyframe requests
	rets    [][]*ring // rets[home][from]: packet buffers going home
	table   atomic.Pointer[route.Table]
	upcalls chan route.Upcall
	free    chan *[route.MaxUpcall]byte
	stop    atomic.Bool
	gsoOff  atomic.Bool
	next    atomic.Uint32
	wg      sync.WaitGroup
	started time.Time
	steer   io.Closer
	status  Status
	br      bridgeState // Inject, RequestKeyframe, taps (inbox.go, tap.go)
}

// ErrClosed is returned by WriteTo after Close.
var ErrClosed = errors.New("fastpath: closed")

// New opens one socket per core, attaches steering and allocates every
// core's slab, rings and message arrays; Start runs the loops.
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
	if cfg.RingDepth <= 0 {
		cfg.RingDepth = 4096
	}
	if cfg.SlabPackets <= 0 {
		cfg.SlabPackets = 4096
	}
	if cfg.ReplayMaxAge == 0 {
		cfg.ReplayMaxAge = DefaultReplayMaxAge
	}
	if cfg.ReplayMaxBytes == 0 {
		cfg.ReplayMaxBytes = DefaultReplayMaxBytes
	}
	if cfg.FrameWait == 0 {
		cfg.FrameWait = DefaultFrameWait
	}
	cpus := udpio.CPUs()
	n := cfg.Cores
	if n <= 0 {
		n = len(cpus)
	}
	n = min(n, MaxCores)
	conns, err := udpio.ListenGroup(udpio.Options{Addr: cfg.Addr, BufBytes: cfg.SockBuf}, n)
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	e := &Engine{
		cfg:     cfg,
		conns:   conns,
		upcalls: make(chan route.Upcall, cfg.UpcallDepth),
		free:    make(chan *[route.MaxUpcall]byte, cfg.UpcallDepth),
		started: time.Now(),
	}
	if err := e.attachSteering(); err != nil {
		_ = e.closeConns()
		return nil, err
	}
	for range cfg.UpcallDepth {
		e.free <- new([route.MaxUpcall]byte)
	}
	e.table.Store(route.Empty)
	gso := cfg.GSO && udpio.ProbeGSO(conns[0])
	e.rings = make([][]*ring, n)
	e.rets = make([][]*ring, n)
	for i := range n {
		e.rings[i] = make([]*ring, n)
		e.rets[i] = make([]*ring, n)
		for j := range n {
			if i != j {
				e.rings[i][j] = newRing(cfg.RingDepth)
				e.rets[i][j] = newRing(cfg.SlabPackets) // never full: holds at most a slab
			}
		}
	}
	e.status = Status{Cores: n, GSO: gso, BPF: e.steer != nil, Steering: e.status.Steering}
	e.br.init(n, cfg.BridgeDepth)
	for i := range n {
		c, err := newCore(e, i, cpus[i%len(cpus)], conns[i], gso)
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("fastpath: core %d: %w", i, err)
		}
		e.cores = append(e.cores, c)
		e.status.CPUs = append(e.status.CPUs, c.cpu)
	}
	return e, nil
}

// attachSteering runs Config.Steer per Config.BPF and records the outcome.
func (e *Engine) attachSteering() error {
	mode := strings.ToLower(e.cfg.BPF)
	switch {
	case len(e.conns) == 1:
		e.status.Steering = "one core: no steering needed"
		return nil
	case mode == "off":
		e.status.Steering = "kernel reuseport hash (bpf off)"
		return nil
	case e.cfg.Steer == nil:
		e.status.Steering = "kernel reuseport hash (no steering program wired)"
		return nil
	}
	fds := make([]int, len(e.conns))
	for i, c := range e.conns {
		fds[i] = c.FD()
	}
	cl, err := e.cfg.Steer(fds)
	if err != nil {
		if mode == "on" {
			return fmt.Errorf("fastpath: bpf on: %w", err)
		}
		e.status.Steering = "kernel reuseport hash (bpf unavailable: " + err.Error() + ")"
		return nil
	}
	e.steer = cl
	e.status.Steering = fmt.Sprintf("bpf: SK_REUSEPORT ufrag steering over %d sockets", len(e.conns))
	return nil
}

// Status reports the cores, their CPUs, GSO and steering.
func (e *Engine) Status() Status {
	s := e.status
	s.GSO = s.GSO && !e.gsoOff.Load()
	s.CPUs = append([]int(nil), s.CPUs...)
	s.ZeroAllocCM = srtpx.ZeroAllocCTR()
	return s
}

// Cores is the number of core loops.
func (e *Engine) Cores() int { return len(e.cores) }

// PickCore chooses the core for a new session, round robin; control writes
// it into the session's ufrag with route.UfragForCore.
func (e *Engine) PickCore() int { return int((e.next.Add(1) - 1) % uint32(len(e.cores))) }

// ownerOf is the core that owns s (route.Session.Core, or derived from ID).
func (e *Engine) ownerOf(s *route.Session) int {
	if s.Core >= 0 && s.Core < len(e.cores) {
		return s.Core
	}
	return int(s.ID) % len(e.cores)
}

// Port returns the bound UDP port.
func (e *Engine) Port() int { return e.conns[0].Port() }

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

// Close stops the loops, waits for them and closes the sockets.
func (e *Engine) Close() error {
	if e.stop.Swap(true) {
		return nil
	}
	for _, c := range e.cores {
		c.waker.Wake()
	}
	e.wg.Wait()
	e.br.quiesce()
	for _, c := range e.cores {
		_ = c.waker.Close()
	}
	if e.steer != nil {
		_ = e.steer.Close()
	}
	return e.closeConns()
}

func (e *Engine) closeConns() error {
	var err error
	for _, c := range e.conns {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// Publish installs a new route table; cores pick it up at their next batch
// (a sleeping core is woken for it).
func (e *Engine) Publish(t *route.Table) {
	e.table.Store(t)
	for _, c := range e.cores {
		if c.sleeping.CompareAndSwap(true, false) {
			c.waker.Wake()
		}
	}
}

// Table returns the table currently published.
func (e *Engine) Table() *route.Table { return e.table.Load() }

// Upcalls is the ring control reads STUN and DTLS datagrams from.
func (e *Engine) Upcalls() <-chan route.Upcall { return e.upcalls }

// Release returns an Upcall's buffer to the pool.
func (e *Engine) Release(u route.Upcall) {
	if u.Buf != nil {
		e.free <- u.Buf
	}
}

// WriteTo sends one datagram from the media port (STUN responses, DTLS
// records). It may be called from any goroutine; every socket of the group
// has the same local address, so the peer sees one 5-tuple.
func (e *Engine) WriteTo(b []byte, to netip.AddrPort) error {
	if e.stop.Load() {
		return ErrClosed
	}
	if route.IsTCPPeer(to) {
		if e.tcp == nil || !e.tcp.Write(to, b) {
			return ErrClosed
		}
		e.tcp.Flush()
		return nil
	}
	return e.conns[0].WriteTo(b, to)
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
		out[i].Core, out[i].CPU, out[i].Thread = c.id, c.cpu, int(c.tid.Load())
	}
	return out
}

// upcall hands a copy of b to control, or drops it when the ring is full.
func (e *Engine) upcall(c *core, k route.UpcallKind, sid route.SessionID, from netip.AddrPort, b []byte) {
	var buf *[route.MaxUpcall]byte
	select {
	case buf = <-e.free:
	default:
		c.cnt.drops[DropUpcallFull].Add(1)
		return
	}
	n := copy(buf[:], b)
	select {
	case e.upcalls <- route.Upcall{Kind: k, Session: sid, From: from, Data: buf[:n], Core: c.id, Buf: buf}:
	default:
		e.free <- buf
		c.cnt.drops[DropUpcallFull].Add(1)
	}
}
