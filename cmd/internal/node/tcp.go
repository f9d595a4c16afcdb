package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/fanout/fanout/fastpath/tcp"
)

// WebRTC over TCP (spec "WebRTC over TCP"): rtc_server { tcp { enabled on;
// listen 8000; } protocol tcp|all; }. When tcp.listen is the HTTP server's or
// the API's port, that listener serves both (one-port mode): connections
// whose first bytes are RFC 4571-framed STUN go to the TCP transport, the
// rest to HTTP(S).

// newTCP creates the transport and attaches it to the fastpath; it must run
// before the fastpath starts. tcpShared says which HTTP port it shares.
func (s *Server) newTCP() error {
	r := s.cfg.RTCServer
	if !r.TCP.Enabled {
		return nil
	}
	listen := first(s.opts.TCPListen, r.TCP.Listen)
	port := portOf(listen)
	for _, hp := range []string{portOf(first(s.opts.APIListen, s.cfg.HTTPAPI.Listen)), portOf(first(s.opts.HTTPListen, s.cfg.HTTPServer.Listen))} {
		if port == hp && port != "0" {
			s.tcpShared = port
		}
	}
	cfg := tcp.Config{Listen: listen}
	if s.tcpShared != "" {
		cfg.Listen = "" // the HTTP listener feeds it through tcp.Sniff
	} else if a, err := listenAddr(listen); err == nil {
		cfg.Listen = a.String()
	}
	srv, err := tcp.New(cfg, s.fp)
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
	if s.tcpShared == "" {
		s.log.Info("webrtc over tcp", "listen", s.tcpSrv.Addr())
	} else {
		s.log.Info("webrtc over tcp shares the http port", "port", s.tcpShared)
	}
	return nil
}

// tcpPort is the port TCP candidates carry.
func (s *Server) tcpPort() int {
	if s.tcpSrv != nil && s.tcpShared == "" {
		return int(s.tcpSrv.Addr().Port())
	}
	p, _ := strconv.Atoi(portOf(first(s.opts.TCPListen, s.cfg.RTCServer.TCP.Listen)))
	return p
}

// sniff wraps an HTTP listener in one-port mode.
func (s *Server) sniff(ln net.Listener) net.Listener {
	if s.tcpSrv == nil || s.tcpShared == "" {
		return ln
	}
	if _, p, err := net.SplitHostPort(ln.Addr().String()); err != nil || p != s.tcpShared {
		return ln
	}
	return tcp.Sniff(ln, s.tcpSrv)
}

// closeTCP is control's way to drop a connection.
func (s *Server) closeTCP(peer netip.AddrPort, duplicate bool) {
	if s.tcpSrv == nil {
		return
	}
	reason := tcp.CloseUnknownSession
	if duplicate {
		reason = tcp.CloseDuplicate
	}
	s.tcpSrv.CloseConn(peer, reason)
}
