package node

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/fanout/fanout/fastpath/tcpio"
)

// WebRTC over TCP (spec "WebRTC over TCP"): rtc_server { tcp { enabled on;
// listen 8000; } protocol tcp|all; }. When tcp.listen is the HTTP server's or
// the API's port, that listener serves both (one-port mode): connections
// whose first bytes are RFC 4571-framed STUN go to the TCP transport, the
// rest to HTTP(S).

// newTCP creates the transport and attaches it to the fastpath; it must run
// before the fastpath starts. tcpShared says which HTTP port it shares.
func (s *Server) newTCP() error {
	if !s.cfg.RTCServer.TCP.Enabled {
		return nil
	}
	port := s.addrs.tcp.Port()
	if port != 0 && (port == s.addrs.api.Port() || s.cfg.HTTPServer.Enabled && port == s.addrs.http.Port()) {
		s.tcpShared = port
	}
	cfg := tcpio.Config{MaxConnsPerIP: s.cfg.Limits.TCPConnsPerIP, ExemptLoopback: s.cfg.Limits.ExemptLoopback}
	if s.tcpShared == 0 {
		cfg.Listen = s.addrs.tcp.String() // else the HTTP listener feeds it through tcpio.Sniff
	}
	srv, err := tcpio.New(cfg, s.fp)
	if err != nil {
		return fmt.Errorf("rtc_server.tcp: %w", err)
	}
	s.tcpSrv = srv
	s.fp.AttachTCP(srv)
	return nil
}

// startTCP starts the transport's event loops (and its listener unless in
// one-port mode).
func (s *Server) startTCP() error {
	if s.tcpSrv == nil {
		return nil
	}
	if err := s.tcpSrv.Start(); err != nil {
		return fmt.Errorf("rtc_server.tcp: %w", err)
	}
	s.closers = append(s.closers, func() { _ = s.tcpSrv.Close() })
	if s.tcpShared == 0 {
		s.log.Info("webrtc over tcp", "listen", s.tcpSrv.Addr())
	} else {
		s.log.Info("webrtc over tcp shares the http port", "port", s.tcpShared)
	}
	return nil
}

// tcpPort is the port TCP candidates carry.
func (s *Server) tcpPort() int {
	if s.tcpSrv != nil && s.tcpShared == 0 {
		return int(s.tcpSrv.Addr().Port())
	}
	return int(s.addrs.tcp.Port())
}

// sniff wraps an HTTP listener in one-port mode.
func (s *Server) sniff(ln net.Listener) net.Listener {
	if s.tcpSrv == nil || s.tcpShared == 0 || addrOf(ln).Port() != s.tcpShared {
		return ln
	}
	return tcpio.Sniff(ln, s.tcpSrv)
}

// closeTCP is control's way to drop a connection.
func (s *Server) closeTCP(peer netip.AddrPort, duplicate bool) {
	if s.tcpSrv == nil {
		return
	}
	reason := tcpio.CloseUnknownSession
	if duplicate {
		reason = tcpio.CloseDuplicate
	}
	s.tcpSrv.CloseConn(peer, reason)
}
