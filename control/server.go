// Package control is Fanout's control plane: WHIP/WHEP and SRS's legacy
// signaling API, SDP negotiation, ICE-lite, DTLS, and the registry of
// sessions and streams from which it builds the fastpath's route tables.
//
// Who imports it: cmd. It imports the fastpath only through its exported
// contract (route tables, upcalls, WriteTo) and never conf or bridge: cmd
// maps configuration onto Config.
//
// Concurrency: one upcall goroutine reads STUN and DTLS datagrams from the
// fastpath; each session's DTLS association runs in its own goroutine, which
// owns the session's lifetime. Server.mu guards the registry; route tables
// are rebuilt under it and published with an atomic swap.
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
	"time"

	"github.com/klauspost/cpuid/v2"
	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"

	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/control/ice"
	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/route"
)

// Fastpath is what control needs of the media engine.
type Fastpath interface {
	Publish(t *route.Table)
	Upcalls() <-chan fastpath.Upcall
	Release(u fastpath.Upcall)
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
	DTLSRole      string // passive | active
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
	// GCM comes first when the CPU has AES and CLMUL.
	PreferCM bool
	// VhostOf maps a request's vhost (query or Host) to the vhost name
	// streams are registered under (SRS: an unconfigured host is
	// __defaultVhost__); nil keeps it as given.
	VhostOf func(host string) string
	// Events, when set, hears publishers become ready and go (virtual.go).
	Events Events
}

// Server is the control plane.
type Server struct {
	cfg              Config
	fp               Fastpath
	log              *slog.Logger
	cert             tls.Certificate
	fingerprint      string
	profiles         []dtls.SRTPProtectionProfile
	handshakeTimeout time.Duration
	candEnv          candidate.Env
	hookClient       *http.Client

	mu       sync.Mutex
	sessions map[route.SessionID]*session
	byUfrag  map[string]*session
	byAddr   map[netip.AddrPort]*session
	streams  map[string]*stream
	freeIDs  []route.SessionID
	nextID   route.SessionID
	nextSt   route.StreamID
	freeSt   []route.StreamID
	version  uint64
	epoch    uint32
	ssrc     uint32
	closing  bool
	draining bool
	counts   Counters

	// Route-table publishing (changedLocked): when the last table went
	// out, how long player changes wait after it, and whether some wait.
	published    time.Time
	publishGap   time.Duration
	dirty        bool
	flushPending bool
	replies      []stunReply // sent once the table with their address is out

	stop chan struct{}
	wg   sync.WaitGroup
}

// Counters are control-plane totals for the API and metrics.
type Counters struct {
	STUNBindings, STUNRejected uint64
	SessionsCreated            uint64
	SessionsEnded              uint64
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
		sessions:         map[route.SessionID]*session{},
		byUfrag:          map[string]*session{},
		byAddr:           map[netip.AddrPort]*session{},
		streams:          map[string]*stream{},
		ssrc:             initialSSRC(),
		hookClient:       &http.Client{Timeout: hookTimeout},
		stop:             make(chan struct{}),
	}
	if s.handshakeTimeout == 0 {
		s.handshakeTimeout = 30 * time.Second
	}
	return s, nil
}

// DefaultRTCOptions are SRS's vhost rtc defaults.
func DefaultRTCOptions() RTCOptions {
	return RTCOptions{Enabled: true, NACK: true, TWCC: true, KeyframeCache: true, STUNTimeout: 30 * time.Second,
		DTLSRole: "passive"}
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
		s.mu.Unlock()
		return
	}
	s.closing = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
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
	s.mu.Unlock()
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
	defer s.mu.Unlock()
	return s.counts, len(s.sessions)
}

func (s *Server) readUpcalls() {
	defer s.wg.Done()
	up := s.fp.Upcalls()
	for {
		select {
		case <-s.stop:
			return
		case u := <-up:
			switch u.Kind {
			case fastpath.UpSTUN:
				s.onSTUN(u.From, u.Data)
			case fastpath.UpDTLS:
				s.onDTLS(u.Session, u.From, u.Data)
			case fastpath.UpTCPClosed:
				s.onTCPClosed(u.From)
			}
			s.fp.Release(u)
		}
	}
}

// onSTUN answers a Binding Request after verifying it (package ice), and
// records its source as a valid address of the session; the latest source
// becomes the send address (RFC 8445 §7.3.1.4 for a lite agent; NAT
// rebinding). The first binding starts DTLS.
func (s *Server) onSTUN(from netip.AddrPort, b []byte) {
	req, err := ice.Parse(b)
	if err != nil {
		s.countReject()
		s.closeTCP(from, false)
		return
	}
	s.mu.Lock()
	ss := s.byUfrag[req.LocalUfrag]
	if ss == nil || ss.ended || (ss.remoteUfrag != "" && req.RemoteUfrag != ss.remoteUfrag) {
		s.counts.STUNRejected++
		s.mu.Unlock()
		s.closeTCP(from, false)
		return
	}
	dup := fastpath.IsTCPPeer(from) && hasOtherTCP(ss.addrs, from)
	s.mu.Unlock()
	if dup {
		// SRS: one TCP connection per session (srs-reference §3.5).
		s.closeTCP(from, true)
		return
	}
	if err := req.Verify(ss.localPwd); err != nil {
		s.countReject()
		ss.log.Debug("stun rejected", "from", from, "err", err)
		s.closeTCP(from, false)
		return
	}
	resp, err := req.Response(from, ss.localPwd)
	if err != nil {
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	s.mu.Lock()
	s.counts.STUNBindings++
	changed := false
	if !containsAddr(ss.addrs, from) {
		ss.addrs = append(ss.addrs, from)
		s.byAddr[from] = ss
		changed = true
	}
	if ss.peer != from {
		ss.peer = from
		changed = true
	}
	start := !ss.started && !ss.ended
	if start {
		ss.started = true
		s.wg.Add(1)
	}
	// The client starts DTLS when it gets this answer, and the cores drop
	// DTLS from addresses their table does not know: a new address goes
	// out in the table before its answer does (publishLocked sends
	// s.replies), and so do the answers to its retransmissions meanwhile.
	if changed {
		ss.addrPending = true
	}
	held := ss.addrPending
	if held {
		s.replies = append(s.replies, stunReply{ss: ss, b: resp, to: from})
		if changed {
			s.changedLocked(ss) // may publish, and so answer, at once
		}
	}
	s.mu.Unlock()
	if !held {
		_ = s.fp.WriteTo(resp, from)
	}
	if start {
		go s.runDTLS(ss)
	}
}

// stunReply is a binding answer waiting for its address to be published.
type stunReply struct {
	ss *session
	b  []byte
	to netip.AddrPort
}

// quality reads the fastpath's media counters of a session, if it has them.
func (s *Server) quality(ss *session) (fastpath.SessionQuality, bool) {
	qs, ok := s.fp.(interface {
		SessionQuality(route.SessionID) (fastpath.SessionQuality, bool)
	})
	if !ok {
		return fastpath.SessionQuality{}, false
	}
	return qs.SessionQuality(ss.id)
}

func transportOf(peer netip.AddrPort) string {
	switch {
	case !peer.IsValid():
		return "none"
	case fastpath.IsTCPPeer(peer):
		return "tcp"
	}
	return "udp"
}

// closeTCP closes a TCP peer's connection (no-op for UDP peers).
func (s *Server) closeTCP(from netip.AddrPort, dup bool) {
	if fastpath.IsTCPPeer(from) && s.cfg.CloseTCP != nil {
		s.cfg.CloseTCP(from, dup)
	}
}

func hasOtherTCP(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x != a && fastpath.IsTCPPeer(x) {
			return true
		}
	}
	return false
}

// onTCPClosed forgets a closed TCP connection; a session that was sending
// over it ends (SRS ends the session when its TCP connection closes).
func (s *Server) onTCPClosed(from netip.AddrPort) {
	s.mu.Lock()
	ss := s.byAddr[from]
	if ss == nil {
		s.mu.Unlock()
		return
	}
	delete(s.byAddr, from)
	for i, a := range ss.addrs {
		if a == from {
			ss.addrs = append(ss.addrs[:i], ss.addrs[i+1:]...)
			break
		}
	}
	current := ss.peer == from
	s.changedLocked(ss)
	s.mu.Unlock()
	if current {
		s.end(ss, "tcp connection closed")
	}
}

func (s *Server) countReject() {
	s.mu.Lock()
	s.counts.STUNRejected++
	s.mu.Unlock()
}

func containsAddr(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (s *Server) onDTLS(sid route.SessionID, from netip.AddrPort, b []byte) {
	s.mu.Lock()
	ss := s.sessions[sid]
	if ss == nil {
		ss = s.byAddr[from]
	}
	s.mu.Unlock()
	if ss == nil || ss.transport == nil {
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	if !s.checkDTLS(ss, from, b) {
		return
	}
	ss.transport.deliver(b)
}

// sweep ends sessions silent for longer than their vhost's stun_timeout
// (SRS sweeps every 5 s; once a second keeps the bound tight).
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			var dead []*session
			s.mu.Lock()
			for _, ss := range s.sessions {
				if ss.virtual {
					continue // no STUN; it ends with its RTMP stream
				}
				to := s.cfg.Vhost(ss.stream.vhost).STUNTimeout
				if to > 0 && now.UnixNano()-ss.lastSeen.Load() > int64(to) {
					dead = append(dead, ss)
				}
			}
			s.mu.Unlock()
			for _, ss := range dead {
				s.end(ss, "stun timeout")
			}
		}
	}
}

// installKeys hands a finished DTLS association's keys to the fastpath.
func (s *Server) installKeys(ss *session, k *route.Keys, profile string) {
	s.mu.Lock()
	if ss.ended {
		s.mu.Unlock()
		return
	}
	ss.keys, ss.profile = k, profile
	s.epoch++
	ss.epoch = s.epoch
	epoch := ss.epoch
	s.changedLocked(ss)
	s.mu.Unlock()
	ss.log.Info("dtls done", "srtp", profile, "peer", ss.peer)
	s.publisherReady(ss, epoch)
}

// end tears a session down once: registry, route table, DTLS.
func (s *Server) end(ss *session, reason string) {
	s.mu.Lock()
	if ss.ended {
		s.mu.Unlock()
		return
	}
	ss.ended, ss.reason = true, reason
	q, hasQ := s.quality(ss) // before the table forgets the session
	delete(s.sessions, ss.id)
	if s.byUfrag[ss.localUfrag] == ss {
		delete(s.byUfrag, ss.localUfrag)
	}
	for _, a := range ss.addrs {
		if s.byAddr[a] == ss {
			delete(s.byAddr, a)
		}
	}
	s.detachLocked(ss)
	s.freeIDs = append(s.freeIDs, ss.id)
	s.counts.SessionsEnded++
	s.changedLocked(ss)
	started := ss.started
	s.mu.Unlock()
	s.publisherGone(ss)
	s.endHooks(ss)
	ss.doneOnce.Do(func() { close(ss.done) })
	if !started {
		ss.transport.Close() // no DTLS goroutine owns it
	}
	attrs := []any{"reason", reason, "duration", time.Since(ss.created).Round(time.Millisecond),
		"srtp", ss.profile, "peer", ss.peer, "transport", transportOf(ss.peer),
		"video", ss.codecs[route.KindVideo], "audio", ss.codecs[route.KindAudio]}
	if hasQ {
		var pkts, bytes uint64
		var lost int64
		for _, t := range q.Tracks {
			pkts, bytes, lost = pkts+t.Packets, bytes+t.Bytes, lost+t.Lost
		}
		attrs = append(attrs, "packets", pkts, "bytes", bytes, "lost", lost, "nacks", q.NACKs, "rtt", q.RTT)
	}
	ss.log.Info("session end", attrs...)
}
