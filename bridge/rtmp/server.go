package rtmp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/fanout/fanout/bridge/hub"
)

// Config configures a Server.
type Config struct {
	Hub    *hub.Hub
	Logger *slog.Logger
	// Vhost maps a vhost name (the URL's `?vhost=`, else the tcUrl's
	// host) to a configured vhost, hub.DefaultVhost for unknown ones as in
	// SRS. Nil keeps an explicit `?vhost=` and maps every host to
	// hub.DefaultVhost.
	Vhost func(host string) string
	// Timeout bounds the handshake and every read from a publisher
	// (default 10s).
	Timeout time.Duration
	// Wait bounds how long a player of a stream that is not live waits
	// for it and its first key frame (default 30s).
	Wait time.Duration
}

// Server accepts RTMP publishers and players.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server; call Serve to accept connections.
func NewServer(cfg Config) *Server {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections on ln until Close. It always returns an error;
// ErrServerClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("rtmp accept: %w", err)
		}
		if !s.track(c) {
			_ = c.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(c)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops every listener and connection and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(c net.Conn) {
	log := s.log.With("remote", c.RemoteAddr().String())
	_ = c.SetDeadline(time.Now().Add(s.cfg.Timeout))
	sc := &conn{}
	if err := sc.handshake(c); err != nil {
		log.Debug("rtmp connect failed", "err", err)
		return
	}
	if err := sc.accept(); err != nil {
		log.Debug("rtmp connect failed", "tcUrl", sc.tcURL, "err", err)
		return
	}
	req, err := parseRequest(sc.tcURL, sc.Stream)
	if err != nil {
		_ = sc.refuse("NetStream.Play.BadName", "the URL needs /app/stream")
		log.Warn("rtmp refused", "tcUrl", sc.tcURL, "stream", sc.Stream, "err", err)
		return
	}
	key := s.keyOf(req)
	log = log.With("stream", key.String())
	if sc.Publish {
		err = s.publish(c, sc, key, log)
	} else {
		err = s.play(c, sc, key, log)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		log.Info("rtmp session ended", "publish", sc.Publish, "err", err)
	}
}

// keyOf is the hub key of a request: the vhost is `?vhost=` (or
// `?domain=`), else the tcUrl's host, mapped through Config.Vhost as SRS
// maps an unknown vhost to __defaultVhost__.
func (s *Server) keyOf(r request) hub.Key {
	vhost := r.Vhost
	switch {
	case s.cfg.Vhost != nil && vhost == "":
		vhost = s.cfg.Vhost(r.Host)
	case s.cfg.Vhost != nil:
		vhost = s.cfg.Vhost(vhost)
	}
	return hub.NewKey(vhost, r.App, r.Stream)
}
