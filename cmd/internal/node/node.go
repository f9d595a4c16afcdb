// Package node assembles a running Fanout from its parts: it starts the
// fastpath, the XDP shield (xdp.go: bpf.Shield, handed to control as its
// Peers), the WebRTC-over-TCP transport, control, the bridge and every
// listener in dependency order and closes them in reverse; it builds the
// HTTP routes in one place (mux.go), links control and the bridge
// (bridge.go: rtmp_to_rtc and rtc_to_rtmp), joins the cluster when
// configured (cluster.go: claims, placement, /api/v1/cluster), maps the
// typed conf.Config onto
// each part's own options (config.go), serves Prometheus metrics
// (metrics.go), applies reloads and prints the start banner (banner.go).
// The system tests, which drive it with real clients (pion, Chromium,
// FFmpeg), live beside it.
//
// Only cmd/fanout imports it. It may import every Fanout package.
//
// Concurrency: Start, Reload, Drain and Close are called by one goroutine
// (main's). The live configuration is an atomic pointer read by the
// vhost callbacks of control and the bridge on their own goroutines;
// bridgeLink guards its ingests with a mutex held only around map updates.
package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/bpf"
	"github.com/fanout/fanout/cmd/internal/rooms"
	"github.com/fanout/fanout/conf"
	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/relay"
	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/tcpio"
)

// Options override what the config says, for tests. Listen values are read
// by conf.ParseListen ("127.0.0.1:0" picks a free port); "" keeps the
// configured address.
type Options struct {
	// APIListen and RTCListen replace the configured listen addresses.
	APIListen  string
	RTCListen  string
	HTTPListen string
	// HTTPSAPIListen and HTTPSListen replace the HTTPS listen addresses.
	HTTPSAPIListen string
	HTTPSListen    string
	TCPListen      string // rtc_server.tcp.listen
	// PreferCM offers SRTP_AES128_CM_HMAC_SHA1_80 before GCM (tests of the CM path;
	// it decides where Fanout is the DTLS server: dtls_role passive).
	PreferCM bool
	// RTMPListen replaces the RTMP `listen` addresses.
	RTMPListen string
	// Relay pulls streams other nodes own (relay.go); off by default.
	Relay RelayOptions
	// ClusterTTL replaces the cluster keys' TTL (cluster.DefaultTTL), so
	// tests see a dead node expire quickly.
	ClusterTTL time.Duration
}

// Server is a running Fanout: the fastpath, control, the bridge and the
// HTTP, HTTPS, RTMP and TCP listeners.
type Server struct {
	cfg    *conf.Config // as started; what needs a restart is read from here
	live   atomic.Pointer[conf.Config]
	log    *slog.Logger
	opts   Options
	addrs  listens // where each listener binds
	fp     *fastpath.Engine
	ctl    *control.Server
	apiLn  net.Listener
	httpLn net.Listener
	// link wires the bridge (RTMP, HTTP-FLV, HLS) to control and the
	// fastpath (bridge.go); rtmpLns are its RTMP listeners.
	link      *bridgeLink
	rtmpLns   []net.Listener
	rtmpLimit *rtmpLimit     // set by startBridge
	httpLimit httpLimit      // net/http's own limits, counted at the connection
	sig       *rooms.Service // the demos' signaling, on the HTTP server
	// HTTPS listeners, when enabled.
	apiTLS, httpTLS netip.AddrPort
	tcpSrv          *tcpio.Server
	tcpShared       uint16       // the HTTP port WebRTC over TCP shares, 0 if its own
	shield          *bpf.Shield  // the XDP shield, nil when off (xdp.go)
	clink           *clusterLink // nil without cluster { enabled on; } (cluster.go)
	closers         []func()
	relays          atomic.Pointer[relay.Manager] // set once the API listens (relay.go)
}

// Start brings every part up in dependency order: fastpath (and the TCP
// transport it owns), control, the bridge, the HTTP API, the HTTP server,
// RTMP. On error what started is closed again.
func Start(cfg *conf.Config, log *slog.Logger, o Options) (*Server, error) {
	s := &Server{cfg: cfg, log: log, opts: o}
	s.link = &bridgeLink{s: s, log: log.With("part", "bridge")}
	s.live.Store(cfg)
	var err error
	if s.addrs, err = o.listens(cfg); err != nil {
		return nil, err
	}
	if !cfg.RTCServer.Enabled {
		log.Warn("rtc_server is disabled in the config; WebRTC sessions will be refused")
	}
	if err := s.startFastpath(); err != nil {
		return nil, err
	}
	if err := s.startTCP(); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.Cluster.Enabled {
		s.clink = newClusterLink(s)
	}
	s.ctl, err = control.New(s.controlConfig(), s.fp)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.ctl.Start()
	s.closers = append(s.closers, s.ctl.Close)
	s.startBridge() // closes before control: its virtual publishers and ingests end first
	s.sig = rooms.New(rooms.Config{Logger: s.log.With("part", "signaling")})
	// Runs after the HTTP servers' closers (closers run in reverse), which
	// leave hijacked WebSockets open for sig.Close to end.
	s.closers = append(s.closers, s.sig.Close)
	if err := s.startAPI(); err != nil {
		s.Close()
		return nil, err
	}
	if s.clink != nil {
		if err := s.startCluster(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.startRelays(); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.HTTPServer.Enabled && !s.sharedHTTP() {
		if err := s.startHTTP(); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.serveRTMP(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// startFastpath opens the UDP sockets and the TCP transport (which must
// attach before the cores start) and starts the cores.
func (s *Server) startFastpath() error {
	f := s.cfg.Fastpath
	var err error
	s.fp, err = fastpath.New(fastpath.Config{Addr: s.addrs.rtc, Batch: f.Batch, Cores: f.Cores, GSO: f.GSO,
		BPF: f.BPF, FrameWait: f.FrameWait, ReplayMaxAge: f.ReplayMaxAge, ReplayMaxBytes: f.ReplayMaxBytes,
		Steer: func(fds []int) (io.Closer, error) { return bpf.AttachUfragSteering(fds) }})
	if err != nil {
		return err
	}
	st := s.fp.Status()
	if st.Cores > 1 && !st.BPF {
		s.log.Warn("fastpath: no BPF steering; sessions are placed by the kernel's reuseport hash and handed to their core",
			"cores", st.Cores, "steering", st.Steering)
	} else {
		s.log.Info("fastpath", "cores", st.Cores, "cpus", st.CPUs, "gso", st.GSO, "steering", st.Steering)
	}
	spareP(st.Cores)
	if !st.ZeroAllocCM {
		s.log.Warn("fastpath: this Go release's AES-CTR cannot be reset in place; AES-CM egress allocates per packet (GCM is unaffected)")
	}
	if err := s.newTCP(); err != nil {
		_ = s.fp.Close()
		return err
	}
	s.startShield() // before control, which feeds its peer map, and before the cores run (AF_XDP ports)
	s.fp.Start()
	s.closers = append(s.closers, func() { _ = s.fp.Close() })
	return nil
}

// startAPI serves the HTTP API (SRS's 1985), and the HTTP server's routes
// too when both share a port.
func (s *Server) startAPI() error {
	ln, err := net.Listen("tcp", s.addrs.api.String())
	if err != nil {
		return fmt.Errorf("http_api.listen %v: %w", s.addrs.api, err)
	}
	mux := s.mux(true, s.sharedHTTP())
	s.apiLn = ln
	if s.sharedHTTP() {
		s.httpLn = ln // SRS: http_api and http_server on one port serve both
	}
	h := relayFrom(mux)
	s.serve("http api", s.sniff(ln), nil, h)
	if s.cfg.HTTPAPI.HTTPS.Enabled {
		if s.apiTLS, err = s.serveTLS("https api", s.cfg.HTTPAPI.HTTPS, s.addrs.apiTLS, h); err != nil {
			return err
		}
	}
	return nil
}

// startHTTP runs the HTTP server (SRS's 8080: pages, FLV, HLS).
func (s *Server) startHTTP() error {
	ln, err := net.Listen("tcp", s.addrs.http.String())
	if err != nil {
		return fmt.Errorf("http_server.listen %v: %w", s.addrs.http, err)
	}
	mux := s.mux(false, true)
	s.httpLn = ln
	s.serve("http server", s.sniff(ln), nil, mux)
	if s.cfg.HTTPServer.HTTPS.Enabled {
		if s.httpTLS, err = s.serveTLS("https server", s.cfg.HTTPServer.HTTPS, s.addrs.httpTLS, mux); err != nil {
			return err
		}
	}
	return nil
}

// sharedHTTP says the HTTP server and the API share one listen port.
func (s *Server) sharedHTTP() bool {
	return s.cfg.HTTPServer.Enabled && s.addrs.api.Port() != 0 && s.addrs.api.Port() == s.addrs.http.Port()
}

// serve runs an HTTP server on ln, under TLS when tc is set; its
// connections are counted against net/http's own limits (httpLimit).
func (s *Server) serve(name string, ln net.Listener, tc *tls.Config, h http.Handler) {
	l := s.cfg.Limits
	hs := &http.Server{Handler: h, ReadHeaderTimeout: min(10*time.Second, l.HTTPReadTimeout),
		ReadTimeout: l.HTTPReadTimeout, WriteTimeout: l.HTTPWriteTimeout, IdleTimeout: l.HTTPIdleTimeout,
		MaxHeaderBytes: l.HTTPHeaderSize, ConnState: s.httpLimit.connState}
	ln = s.httpLimit.listener(ln)
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(name+" stopped", "err", err)
		}
	}()
	s.closers = append(s.closers, func() { _ = hs.Close() })
}

// Close stops everything in reverse order.
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// APIAddr is the bound HTTP API address.
func (s *Server) APIAddr() netip.AddrPort { return addrOf(s.apiLn) }

// HTTPAddr is the bound HTTP server address (invalid when disabled).
func (s *Server) HTTPAddr() netip.AddrPort { return addrOf(s.httpLn) }

// RTMPAddr is the first bound RTMP address (invalid when none).
func (s *Server) RTMPAddr() netip.AddrPort {
	if len(s.rtmpLns) == 0 {
		return netip.AddrPort{}
	}
	return addrOf(s.rtmpLns[0])
}

func addrOf(ln net.Listener) netip.AddrPort {
	if ln == nil {
		return netip.AddrPort{}
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// spareP gives the Go scheduler one P more than there are fastpath cores,
// unless GOMAXPROCS is set. Each core's loop holds a P between its syscalls;
// when every P belongs to a core that sits in sendmmsg or ppoll, sysmon takes
// the P back after 20 µs and starts another thread to run it (the runtime's
// retake/handoffp), thousands of times a second. With an idle P in the
// pool it leaves a syscall alone for 10 ms. One hot 4 Mbps stream on 2 cores:
// 4000–4200 players within 0.5 % loss with the spare P, 3600–3800 without
// (bench/results/fastpath-session3.md §5).
func spareP(cores int) {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) <= cores {
		runtime.GOMAXPROCS(cores + 1)
	}
}
