package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/bpf"
	"github.com/fanout/fanout/conf"
	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/tcp"
)

// Options override what the config says, for tests.
type Options struct {
	// APIListen and RTCListen replace the configured listen addresses
	// ("127.0.0.1:0" picks a free port).
	APIListen  string
	RTCListen  string
	HTTPListen string
	// HTTPSAPIListen and HTTPSListen replace the HTTPS listen addresses.
	HTTPSAPIListen string
	HTTPSListen    string
	TCPListen      string // rtc_server.tcp.listen
	// PreferCM offers SRTP_AES128_CM_HMAC_SHA1_80 before GCM (tests of the CM path).
	PreferCM bool
	// RTMPListen replaces the RTMP `listen` addresses.
	RTMPListen string
}

// httpRoutes and apiRoutes let feature files in this package mount their
// handlers (pages, demos, FLV/HLS, API) without editing start: each appends
// in an init function.
var (
	httpRoutes []func(s *Server, mux *http.ServeMux)
	apiRoutes  []func(s *Server, mux *http.ServeMux)
)

// Server is a running Fanout: the fastpath, control and HTTP listeners.
type Server struct {
	cfg    *conf.Config // as started; what needs a restart is read from here
	live   atomic.Pointer[conf.Config]
	log    *slog.Logger
	fp     *fastpath.Engine
	ctl    *control.Server
	apiLn  net.Listener
	httpLn net.Listener
	opts   Options
	// link wires the bridge (RTMP, HTTP-FLV, HLS) to control and the
	// fastpath (bridge.go); rtmpLns are its RTMP listeners.
	link    *bridgeLink
	rtmpLns []net.Listener
	// HTTPS listeners, when enabled.
	apiTLS, httpTLS netip.AddrPort
	tcpSrv          *tcp.Server
	tcpShared       string // the HTTP port WebRTC over TCP shares, "" if its own
	closers         []func()
}

// start brings every part up in dependency order.
func start(cfg *conf.Config, log *slog.Logger, o Options) (*Server, error) {
	s := &Server{cfg: cfg, log: log, opts: o}
	s.link = &bridgeLink{s: s, log: log.With("part", "bridge")}
	s.live.Store(cfg)
	rtcAddr, err := listenAddr(first(o.RTCListen, firstOf(cfg.RTCServer.Listen, "8000")))
	if err != nil {
		return nil, fmt.Errorf("rtc_server.listen: %w", err)
	}
	if !cfg.RTCServer.Enabled {
		log.Warn("rtc_server is disabled in the config; WebRTC sessions will be refused")
	}
	s.fp, err = fastpath.New(fastpath.Config{Addr: rtcAddr, Batch: cfg.Fastpath.Batch,
		Cores: cfg.Fastpath.Cores, GSO: cfg.Fastpath.GSO, BPF: cfg.Fastpath.BPF, FrameWait: frameWait(cfg.Fastpath.FrameWait),
		Steer: func(fds []int) (io.Closer, error) { return bpf.AttachUfragSteering(fds) }})
	if err != nil {
		return nil, err
	}
	if st := s.fp.Status(); st.Cores > 1 && !st.BPF {
		log.Warn("fastpath: no BPF steering; sessions are placed by the kernel's reuseport hash and handed to their core",
			"cores", st.Cores, "steering", st.Steering)
	} else {
		log.Info("fastpath", "cores", st.Cores, "cpus", st.CPUs, "gso", st.GSO, "steering", st.Steering)
	}
	spareP(s.fp.Status().Cores)
	if !s.fp.Status().ZeroAllocCM {
		log.Warn("fastpath: this Go release's AES-CTR cannot be reset in place; AES-CM egress allocates per packet (GCM is unaffected)")
	}
	if err := s.newTCP(); err != nil {
		_ = s.fp.Close()
		return nil, err
	}
	s.fp.Start()
	s.closers = append(s.closers, func() { _ = s.fp.Close() })
	if err := s.startTCP(); err != nil {
		s.Close()
		return nil, err
	}
	s.ctl, err = control.New(s.controlConfig(), s.fp)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.ctl.Start()
	s.closers = append(s.closers, s.ctl.Close)
	s.startBridge() // closes before control: its virtual publishers and ingests end first
	if err := s.startAPI(first(o.APIListen, cfg.HTTPAPI.Listen)); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.HTTPServer.Enabled && !s.sharedHTTP() {
		if err := s.startHTTP(first(o.HTTPListen, cfg.HTTPServer.Listen)); err != nil {
			s.Close()
			return nil, err
		}
	}
	rtmpAddrs := cfg.Listen
	if o.RTMPListen != "" {
		rtmpAddrs = []string{o.RTMPListen}
	} else if len(rtmpAddrs) == 0 {
		rtmpAddrs = []string{"1935"}
	}
	if err := s.serveRTMP(rtmpAddrs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) controlConfig() control.Config {
	r := s.cfg.RTCServer
	return control.Config{
		Candidates: candidate.Params{
			Candidates: r.Candidates, UseAutoDetectNetworkIP: r.UseAutoDetectNetworkIP, IPFamily: r.IPFamily,
			APIAsCandidates: r.APIAsCandidates, ResolveAPIDomain: r.ResolveAPIDomain, KeepAPIDomain: r.KeepAPIDomain,
			Protocol: r.Protocol, UDPPort: s.fp.Port(), TCPPort: s.tcpPort(), TCPEnabled: r.TCP.Enabled,
		},
		Crossdomain: s.cfg.HTTPAPI.Crossdomain,
		PreferCM:    s.opts.PreferCM,
		CloseTCP:    s.closeTCP,
		Logger:      s.log,
		Vhost: func(name string) control.RTCOptions {
			v := s.config().Vhost(name).RTC
			h := s.config().Vhost(name).HTTPHooks
			return control.RTCOptions{
				Enabled: v.Enabled && r.Enabled, NACK: v.NACK, TWCC: v.TWCC, KeyframeCache: v.KeyframeCache,
				STUNTimeout: v.STUNTimeout, DTLSRole: v.DTLSRole,
				Hooks: control.Hooks{Enabled: h.Enabled, OnPublish: h.OnPublish, OnUnpublish: h.OnUnpublish,
					OnPlay: h.OnPlay, OnStop: h.OnStop},
			}
		},
		BearerToken: s.cfg.HTTPAPI.Auth.BearerToken,
		APIAuth: struct {
			Enabled            bool
			Username, Password string
		}{s.cfg.HTTPAPI.Auth.Enabled, s.cfg.HTTPAPI.Auth.Username, s.cfg.HTTPAPI.Auth.Password},
		Summary: s.summary,
		VhostOf: s.vhostOf,
		Events:  s.link,
		Vhosts: func() []string {
			vh := s.config().Vhosts
			names := make([]string, 0, len(vh))
			for n := range vh {
				names = append(names, n)
			}
			sort.Strings(names)
			return names
		},
	}
}

func (s *Server) startAPI(listen string) error {
	addr, err := listenAddr(listen)
	if err != nil {
		return fmt.Errorf("http_api.listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	mux := http.NewServeMux()
	s.ctl.Register(mux)
	s.ctl.RegisterAPI(mux)
	for _, r := range apiRoutes {
		r(s, mux)
	}
	s.apiLn = ln
	if s.sharedHTTP() {
		// SRS: http_api and http_server on one port serve both.
		for _, r := range httpRoutes {
			r(s, mux)
		}
		s.httpLn = ln
	}
	s.serve("http api", s.sniff(ln), mux)
	if hc := s.cfg.HTTPAPI.HTTPS; hc.Enabled {
		if s.apiTLS, err = s.serveTLS("https api", hc, s.opts.HTTPSAPIListen, mux); err != nil {
			return err
		}
	}
	return nil
}

// sharedHTTP says the HTTP server and the API share one listen port.
func (s *Server) sharedHTTP() bool {
	if !s.cfg.HTTPServer.Enabled {
		return false
	}
	api := portOf(first(s.opts.APIListen, s.cfg.HTTPAPI.Listen))
	return api != "0" && api == portOf(first(s.opts.HTTPListen, s.cfg.HTTPServer.Listen))
}

// startHTTP runs the HTTP server (SRS's 8080: pages, FLV, HLS).
func (s *Server) startHTTP(listen string) error {
	addr, err := listenAddr(listen)
	if err != nil {
		return fmt.Errorf("http_server.listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	mux := http.NewServeMux()
	for _, r := range httpRoutes {
		r(s, mux)
	}
	s.httpLn = ln
	s.serve("http server", s.sniff(ln), mux)
	if hc := s.cfg.HTTPServer.HTTPS; hc.Enabled {
		if s.httpTLS, err = s.serveTLS("https server", hc, s.opts.HTTPSListen, mux); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) serve(name string, ln net.Listener, h http.Handler) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(name+" stopped", "err", err)
		}
	}()
	s.closers = append(s.closers, func() { _ = hs.Close() })
}

// HTTPAddr is the bound HTTP server address (invalid when disabled).
func (s *Server) HTTPAddr() netip.AddrPort {
	if s.httpLn == nil {
		return netip.AddrPort{}
	}
	return netip.MustParseAddrPort(s.httpLn.Addr().String())
}

// Close stops everything in reverse order.
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// RTMPAddr is the first bound RTMP address.
func (s *Server) RTMPAddr() netip.AddrPort {
	if len(s.rtmpLns) == 0 {
		return netip.AddrPort{}
	}
	return netip.MustParseAddrPort(s.rtmpLns[0].Addr().String())
}

// APIAddr is the bound HTTP API address.
func (s *Server) APIAddr() netip.AddrPort { return netip.MustParseAddrPort(s.apiLn.Addr().String()) }

// PrintURLs prints where to publish and play, as SRS's docs list them.
func (s *Server) PrintURLs(w io.Writer) {
	api := s.APIAddr()
	host := "localhost"
	fmt.Fprintf(w, "Fanout is running.\n")
	fmt.Fprintf(w, "  WHIP publish:  http://%s:%d/rtc/v1/whip/?app=live&stream=livestream\n", host, api.Port())
	fmt.Fprintf(w, "  WHEP play:     http://%s:%d/rtc/v1/whep/?app=live&stream=livestream\n", host, api.Port())
	fmt.Fprintf(w, "  WebRTC media:  udp/%d\n", s.fp.Port())
	if s.apiTLS.IsValid() {
		fmt.Fprintf(w, "  WHIP (HTTPS):  https://%s:%d/rtc/v1/whip/?app=live&stream=livestream\n", host, s.apiTLS.Port())
	}
	if h := s.HTTPAddr(); h.IsValid() {
		fmt.Fprintf(w, "  Pages:         http://%s:%d/players/whip.html and /players/whep.html\n", host, h.Port())
	}
	if r := s.RTMPAddr(); r.IsValid() {
		fmt.Fprintf(w, "  RTMP publish:  rtmp://%s:%d/live/livestream\n", host, r.Port())
		if h := s.HTTPAddr(); h.IsValid() {
			fmt.Fprintf(w, "  HTTP-FLV, HLS: http://%s:%d/live/livestream.flv and .m3u8 (vhost http_remux, hls)\n", host, h.Port())
		}
	}
}

// listenAddr turns SRS listen values ("8000", "0.0.0.0:8000", "[::]:8000")
// into an address; a bare port listens on all interfaces.
func listenAddr(v string) (netip.AddrPort, error) {
	v = strings.TrimSpace(v)
	if p, err := strconv.ParseUint(v, 10, 16); err == nil {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)), nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

func portOf(v string) string {
	if _, p, err := net.SplitHostPort(v); err == nil {
		return p
	}
	return v
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstOf(vals []string, def string) string {
	if len(vals) > 0 {
		return vals[0]
	}
	return def
}

// frameWait maps `fastpath { frame_wait MICROSECONDS; }` (0 = off) to fastpath.Config.FrameWait.
func frameWait(us int) time.Duration {
	if us <= 0 {
		return -1
	}
	return time.Duration(us) * time.Microsecond
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
