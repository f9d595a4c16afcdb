// Package control is Fanout's control plane: the registry of sessions and
// streams, SDP negotiation, ICE-lite, DTLS, hooks, and the route tables it
// builds for the fastpath. Its HTTP surface (WHIP/WHEP, SRS's legacy and
// JSON APIs) is package httpapi (control/httpapi), which reaches the
// registry only through the small interface it declares (httpapi.Registry,
// implemented by apiView in view.go).
//
// Who imports it: cmd. It imports the fastpath only through its exported
// contract (route tables, upcalls, WriteTo) and never conf or bridge: cmd
// maps configuration onto Config.
//
// Concurrency: the Server is the single owner of sessions and streams.
// Server.mu guards the registry struct Server embeds (registry.go: the
// session and stream maps, the id and SSRC allocators, the counters, the
// route-table bookkeeping) and the mutable fields of every stream and
// session (documented on their types); what Server holds besides is set by
// New and never changes. Methods named …Locked expect mu held. Under mu,
// code only reads and writes memory: no syscall, no network or DTLS I/O,
// no hook, no Events call, no logging (Config.Vhost, a config lookup, is
// the one callback made under mu). A change is published by building a
// new immutable route.Table under mu (publishLocked, coalesced by
// changedLocked); every critical section ends with s.unlock(), never
// mu.Unlock(): it takes pubMu before it drops mu, then hands the table,
// and the STUN answers that waited for it, to the fastpath, so tables
// reach the cores in the order they were built. pubMu is held only across
// Publish, STUN answers' sends and Config.Peers calls (queued under mu,
// made by unlock before the table and answers go out), and its holder
// never takes mu.
//
// Goroutines: one reads STUN and DTLS upcalls from the fastpath; each
// session's DTLS association runs in its own, which owns the session's
// lifetime; a sweeper ends silent sessions. Close stops and waits for all.
package control

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/cpuid/v2"
	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"

	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/control/httpapi"
	"github.com/fanout/fanout/fastpath/route"
)

// Fastpath is what control needs of the media engine.
type Fastpath interface {
	Publish(t *route.Table)
	Upcalls() <-chan route.Upcall
	Release(u route.Upcall)
	WriteTo(b []byte, to netip.AddrPort) error
}

// RTCOptions are a vhost's rtc { } settings that control applies.
type RTCOptions struct {
	Enabled    bool
	NACK, TWCC bool
	// KeyframeCache is rtc.keyframe_cache: players start from the
	// publisher's cached GOP.
	KeyframeCache bool
	STUNTimeout   time.Duration
	DTLSRole      string // passive | active | auto (sdpneg.SetupFor)
	Hooks         Hooks
}

// Config is what cmd hands control, mapped from the config file.
type Config struct {
	Candidates  candidate.Params
	Crossdomain bool
	Vhost       func(name string) RTCOptions
	Logger      *slog.Logger
	// HandshakeTimeout bounds the DTLS handshake; default 30 s.
	HandshakeTimeout time.Duration
	// ServerID names this node in API envelopes and hook bodies.
	ServerID string
	// APIAuth is http_api.auth: Basic auth on /api/ paths (as SRS).
	APIAuth struct {
		Enabled            bool
		Username, Password string
	}
	// BearerToken, when set, is required on WHIP/WHEP (RFC 9725 §4.5).
	BearerToken string
	// Summary adds data (fastpath load, process stats) to /api/v1/summaries.
	Summary func() map[string]any
	// Vhosts lists the configured vhost names for /api/v1/vhosts.
	Vhosts func() []string
	// CloseTCP closes a WebRTC-over-TCP connection: its first STUN named no
	// session (unknown) or its session already has a TCP connection (dup).
	CloseTCP func(peer netip.AddrPort, duplicate bool)
	// PreferCM lists AES-CM before GCM (tests of the CM path); by default
	// GCM comes first when the CPU has AES and CLMUL. The list's order
	// decides where Fanout is the DTLS server; as the client (dtls_role
	// active or auto) the peer picks from it.
	PreferCM bool
	// VhostOf maps a request's vhost (query or Host) to the vhost name
	// streams are registered under (SRS: an unconfigured host is
	// __defaultVhost__); nil keeps it as given.
	VhostOf func(host string) string
	// Events, when set, hears publishers become ready and go (virtual.go).
	Events Events
	// Pull, when set, is called before a play of a stream that has no
	// publisher is answered (pull.go): cmd opens a relay from the stream's
	// owner there (control/relay) and returns once its virtual publisher
	// is registered, or nil at once when no other node owns the stream. An
	// error refuses the play with 503.
	Pull func(ctx context.Context, vhost, app, stream string) error
	// Placement and Cluster, when set (cluster on), are handed to the HTTP
	// layer: where offers go, and /api/v1/cluster.
	Placement httpapi.Placement
	Cluster   func(ctx context.Context) (any, error)
	// HLS, when set, reports a vhost's hls settings for /api/v1/vhosts.
	HLS func(vhost string) (enabled bool, fragment time.Duration)
	// Limits are the capacity limits register applies (limits.go);
	// HTTPLimits the per-IP rates and sizes of the HTTP layer.
	Limits     Limits
	HTTPLimits httpapi.Limits
	// Peers, when set, hears the UDP addresses of sessions come and go
	// (cmd hands it the XDP shield's peer map).
	Peers Peers
}

// Peers hears the remote UDP addresses of sessions: Add when a verified
// STUN binding brings a new one (a new session, or NAT rebinding moving
// one), Remove when its session ends. Calls come in order, outside mu,
// and Add comes before the STUN answer to that address is sent, so the
// client's DTLS that follows finds its address added. TCP peers are not
// reported.
type Peers interface {
	Add(netip.AddrPort)
	Remove(netip.AddrPort)
}

// Server is the control plane.
type Server struct {
	// dtlsQueueDrops counts DTLS records a session's full queue refused.
	dtlsQueueDrops atomic.Uint64

	// Set by New and never changed.
	cfg              Config
	fp               Fastpath
	log              *slog.Logger
	cert             tls.Certificate
	fingerprint      string
	profiles         []dtls.SRTPProtectionProfile
	handshakeTimeout time.Duration
	candEnv          candidate.Env
	hookClient       *http.Client
	api              *httpapi.API

	mu       sync.Mutex
	registry // guarded by mu

	// pubMu orders publishing: unlock takes it before it releases mu.
	pubMu sync.Mutex

	stop chan struct{}
	wg   sync.WaitGroup
}

// Counters are control-plane totals for the API and metrics.
type Counters struct {
	STUNBindings, STUNRejected uint64
	// AddrMovesRefused counts verified bindings from a new address refused
	// over the session's moves (moves.go).
	AddrMovesRefused uint64
	SessionsCreated  uint64
	SessionsEnded    uint64
	// TablesPublished counts route tables handed to the fastpath; join
	// storms coalesce into far fewer than three per session (changedLocked).
	TablesPublished uint64
}

// New creates the control plane over a running fastpath.
func New(cfg Config, fp Fastpath) (*Server, error) {
	cert, err := selfsign.GenerateSelfSigned() // ECDSA P-256, as SRS's `ecdsa on`
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	cert.Leaf = leaf
	sum := sha256Sum(cert.Certificate[0])
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ServerID == "" {
		cfg.ServerID = "vid-" + randomString(7)
	}
	if cfg.Vhost == nil {
		cfg.Vhost = func(string) RTCOptions { return DefaultRTCOptions() }
	}
	s := &Server{
		cfg: cfg, fp: fp, log: cfg.Logger, cert: cert,
		fingerprint:      "sha-256 " + fingerprintHex(sum[:]),
		profiles:         srtpProfiles(cfg.PreferCM),
		handshakeTimeout: cfg.HandshakeTimeout,
		hookClient:       &http.Client{Timeout: hookTimeout},
		stop:             make(chan struct{}),
		registry: registry{
			sessions: map[route.SessionID]*session{},
			byUfrag:  map[string]*session{},
			byAddr:   map[netip.AddrPort]*session{},
			streams:  map[string]*stream{},
			pubsByIP: map[netip.Addr]int{},
			ssrc:     initialSSRC(),
		},
	}
	if s.handshakeTimeout == 0 {
		s.handshakeTimeout = 30 * time.Second
	}
	opts := httpapi.Options{Logger: cfg.Logger, Crossdomain: cfg.Crossdomain, ServerID: cfg.ServerID,
		BearerToken: cfg.BearerToken, VhostOf: cfg.VhostOf, Placement: cfg.Placement, Cluster: cfg.Cluster,
		Limits: cfg.HTTPLimits}
	opts.BasicAuth.Enabled, opts.BasicAuth.Username, opts.BasicAuth.Password =
		cfg.APIAuth.Enabled, cfg.APIAuth.Username, cfg.APIAuth.Password
	s.api = httpapi.New(apiView{s}, opts)
	return s, nil
}

// Register mounts the signaling endpoints on mux, at SRS's paths: WHIP,
// WHEP, and the legacy /rtc/v1/publish/ and /rtc/v1/play/.
func (s *Server) Register(mux *http.ServeMux) { s.api.RegisterSignaling(mux) }

// RegisterAPI mounts SRS's JSON API (/api/…) and /healthz.
func (s *Server) RegisterAPI(mux *http.ServeMux) { s.api.RegisterAPI(mux) }

// RefusalsByStatus counts the 4xx/5xx answers to WHIP/WHEP/legacy/API
// requests, by status (each one is also logged once).
func (s *Server) RefusalsByStatus() map[int]uint64 { return s.api.Refusals() }

// DefaultRTCOptions are SRS's vhost rtc defaults.
func DefaultRTCOptions() RTCOptions {
	return RTCOptions{Enabled: true, NACK: true, TWCC: true, KeyframeCache: true, STUNTimeout: 30 * time.Second,
		DTLSRole: "auto"}
}

// srtpProfiles orders the DTLS-SRTP profiles: AEAD_AES_128_GCM first when
// the CPU accelerates it (about 6× cheaper than AES-CM + HMAC-SHA1 in
// pion/srtp, notes/testing-here.md §5), then the profile every browser has.
func srtpProfiles(preferCM bool) []dtls.SRTPProtectionProfile {
	gcm, cm := dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80
	if preferCM || !cpuid.CPU.Supports(cpuid.AESNI, cpuid.CLMUL) {
		return []dtls.SRTPProtectionProfile{cm, gcm}
	}
	return []dtls.SRTPProtectionProfile{gcm, cm}
}

// initialSSRC seeds the process-wide player SSRC counter as SRS does.
func initialSSRC() uint32 {
	pid := uint32(os.Getpid())
	var b [2]byte
	_, _ = rand.Read(b[:])
	return pid*10000 + pid*100 + pid + uint32(binary.BigEndian.Uint16(b[:]))
}

// Fingerprint is the a=fingerprint value of the process certificate.
func (s *Server) Fingerprint() string { return s.fingerprint }

// Start runs the upcall reader and the liveness sweeper.
func (s *Server) Start() {
	s.wg.Add(2)
	go s.readUpcalls()
	go s.sweep()
}

// Close ends every session and stops the goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closing {
		s.unlock()
		return
	}
	s.closing = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.unlock()
	for _, ss := range all {
		s.end(ss, "server shutdown")
	}
	close(s.stop)
	s.wg.Wait()
}

// Drain refuses new sessions (503) and waits until the live ones end or
// ctx is done; it reports how many were still live.
func (s *Server) Drain(ctx context.Context) int {
	s.mu.Lock()
	s.draining = true
	s.unlock()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		_, live := s.Stats()
		if live == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return live
		case <-t.C:
		}
	}
}

// Stats returns the control counters and the live session count.
func (s *Server) Stats() (Counters, int) {
	s.mu.Lock()
	defer s.unlock()
	return s.counts, len(s.sessions)
}
