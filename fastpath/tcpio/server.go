package tcpio

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Sink receives what arrives on TCP connections; the fastpath engine implements it.
// Both methods run on a gnet loop goroutine and must not block.
type Sink interface {
	// TCPFrame is one RFC 4571 frame (STUN, DTLS, SRTP or SRTCP) from peer; frame is only valid during the call.
	TCPFrame(peer netip.AddrPort, frame []byte)
	// TCPClosed says the connection behind peer is gone (any reason).
	TCPClosed(peer netip.AddrPort)
}

// Config configures a Server; zero values take the defaults.
type Config struct {
	Listen   string // "8000", "0.0.0.0:8000", "[::]:8000", "127.0.0.1:0"; "" when only Enroll (Sniff) is used
	Loops    int    // gnet event loops, default 1 per CPU
	MaxFrame int    // default 1500 (SRS); a longer length prefix closes the connection
	// MaxPending bounds one connection's unsent output (ours plus gnet's backlog),
	// default 256 KiB; Write drops and counts beyond it.
	MaxPending int
	// MaxConnsPerIP bounds the open connections of one source IP (an IPv6
	// source by its /64), 0 = no bound; a connection beyond it is closed at
	// accept and counted (CloseIPLimit). ExemptLoopback lifts it for
	// 127.0.0.0/8 and ::1.
	MaxConnsPerIP  int
	ExemptLoopback bool
}

const (
	defaultMaxPending = 256 << 10
	// readyTimeout bounds how long Start waits for gnet's loops to come up.
	readyTimeout = 10 * time.Second
	// idleTick is how often gnet calls OnTick; we use only the first call.
	idleTick = time.Hour
)

// Server state, guarded by Server.mu.
const (
	stateNew = iota
	stateStarted
	stateClosed
)

// Server is the ICE-TCP transport: gnet loops that own every connection.
type Server struct {
	cfg  Config
	sink Sink

	mu        sync.Mutex
	state     int
	enrolling sync.WaitGroup // Enroll calls in flight; Close waits for them
	eng       gnet.Engine    // server mode (Listen != ""), set in OnBoot
	cli       *gnet.Client   // client mode (Listen == "")
	runDone   chan struct{}  // gnet.Run returned (server mode)
	runErr    error          // gnet.Run's error, readable after runDone
	ready     chan struct{}  // first OnTick: loops are running
	readyOnce sync.Once
	addr      netip.AddrPort

	// life keeps Flush and CloseConn (which post tasks to gnet's pollers) from
	// racing Close: gnet closes a poller's eventfd at shutdown, and a late
	// wake-up write could hit whatever file reused that descriptor number.
	life     sync.RWMutex
	stopping atomic.Bool // set under life: Close is tearing connections down

	shards  [numShards]shard
	perIP   perIP
	loopsMu sync.Mutex
	loops   atomic.Pointer[[]*loop] // copy-on-write, one entry per gnet loop seen
	ctr     serverCounters
}

// New validates cfg and returns a Server that has not started yet.
func New(cfg Config, sink Sink) (*Server, error) {
	if sink == nil {
		return nil, fmt.Errorf("tcp config: %w", os.ErrInvalid)
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.NumCPU()
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = defaultMaxFrame
	}
	cfg.MaxFrame = min(cfg.MaxFrame, maxWireFrame)
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = defaultMaxPending
	}
	if cfg.Listen != "" {
		addr, err := protoAddr(cfg.Listen)
		if err != nil {
			return nil, err
		}
		cfg.Listen = addr
	}
	s := &Server{cfg: cfg, sink: sink, ready: make(chan struct{}), runDone: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].m = make(map[netip.AddrPort]*conn)
	}
	return s, nil
}

// protoAddr turns a Listen value into gnet's "tcp://host:port". The
// wildcards (a port alone, ":port", "[::]:port") become "tcp://:port", the
// only spelling gnet opens as a dual-stack socket: it sets IPV6_V6ONLY on
// any IPv6 literal, "::" included (socket.GetTCPSockAddr), which left IPv4
// clients of `listen 8000;` refused. "0.0.0.0:port" stays IPv4 only.
func protoAddr(listen string) (string, error) {
	if !strings.Contains(listen, ":") {
		listen = ":" + listen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("tcp listen %q: %w", listen, err)
	}
	if host == "::" {
		host = ""
	}
	return "tcp://" + net.JoinHostPort(host, port), nil
}

func (s *Server) options() []gnet.Option {
	return []gnet.Option{
		gnet.WithNumEventLoop(s.cfg.Loops),
		// Engine.Register (Enroll) is only race-free with a balancer other than RoundRobin.
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithLogger(quietLogger{}),
		gnet.WithReuseAddr(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTicker(s.cfg.Listen != ""),
	}
}

// Start runs gnet: on cfg.Listen, or with no listener (Enroll only) when Listen is "".
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	var err error
	if s.cfg.Listen == "" {
		err = s.startClient()
	} else {
		err = s.startServer()
	}
	if err != nil {
		s.state = stateClosed
		return fmt.Errorf("tcp start: %w", err)
	}
	s.state = stateStarted
	return nil
}

func (s *Server) startClient() error {
	cli, err := gnet.NewClient(handler{s}, s.options()...)
	if err != nil {
		return err
	}
	if err := cli.Start(); err != nil {
		return err
	}
	s.cli = cli
	return nil
}

func (s *Server) startServer() error {
	go func() {
		defer close(s.runDone)
		s.runErr = gnet.Run(handler{s}, s.cfg.Listen, s.options()...)
	}()
	select {
	case <-s.ready:
	case <-s.runDone:
		if s.runErr != nil {
			return s.runErr
		}
		return ErrClosed
	case <-time.After(readyTimeout):
		return fmt.Errorf("gnet did not start within %v", readyTimeout)
	}
	addr, err := listenerAddr(s.eng)
	if err != nil {
		s.stopServer()
		return err
	}
	s.addr = addr
	return nil
}

// listenerAddr reads the bound address (port 0 resolved) from a dup of gnet's listener.
func listenerAddr(eng gnet.Engine) (netip.AddrPort, error) {
	fd, err := eng.Dup()
	if err != nil {
		return netip.AddrPort{}, err
	}
	f := os.NewFile(uintptr(fd), "tcp-listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer ln.Close()
	a, ok := addrPortOf(ln.Addr())
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("listener address %v: %w", ln.Addr(), os.ErrInvalid)
	}
	return a, nil
}

// Addr is the bound listen address (port 0 resolved); zero without a listener.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Enroll hands an accepted TCP connection (from the one-port listener) to the
// gnet loops. It takes ownership of c: c is closed in every case (gnet keeps a
// dup of its socket), and the stream is read from where c left it.
func (s *Server) Enroll(c net.Conn) error {
	if _, ok := c.(*net.TCPConn); !ok {
		_ = c.Close()
		return ErrNotTCPConn
	}
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.mu.Unlock()
		_ = c.Close()
		return ErrNotStarted
	case stateClosed:
		s.mu.Unlock()
		_ = c.Close()
		return ErrClosed
	}
	s.enrolling.Add(1)
	s.mu.Unlock()
	defer s.enrolling.Done()

	if s.cli != nil {
		if _, err := s.cli.Enroll(c); err != nil {
			return fmt.Errorf("tcp enroll: %w", err)
		}
		return nil
	}
	ch, err := s.eng.Register(gnet.NewNetConnContext(context.Background(), c))
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("tcp enroll: %w", err)
	}
	if res := <-ch; res.Err != nil {
		return fmt.Errorf("tcp enroll: %w", res.Err)
	}
	return nil
}

// Close stops the loops and closes every connection (each one reported to
// Sink.TCPClosed and counted as CloseShutdown). It waits for the loops to exit.
func (s *Server) Close() error {
	s.mu.Lock()
	prev := s.state
	s.state = stateClosed
	s.mu.Unlock()
	if prev != stateStarted {
		return nil
	}
	s.enrolling.Wait()
	s.life.Lock()
	s.stopping.Store(true)
	s.life.Unlock()
	if s.cli != nil {
		return s.cli.Stop()
	}
	s.stopServer()
	return nil
}

func (s *Server) stopServer() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Stop only needs to trigger the shutdown; we wait on runDone instead of its 500 ms poll
	_ = s.eng.Stop(ctx)
	<-s.runDone
}

// quietLogger drops gnet's own log lines: this package counts, it does not log.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(string, ...any) {}
