package rtmp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/fanout/fanout/bridge/hub"
)

// Config configures a Server.
type Config struct {
	Hub    *hub.Hub
	Logger *slog.Logger
	// Vhost maps the tcUrl host to a vhost name. Nil maps every host to
	// hub.DefaultVhost. An explicit `?vhost=` always wins.
	Vhost func(host string) string
	// Timeout bounds the handshake and every read from a publisher
	// (default 10s).
	Timeout time.Duration
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
	sc := &gortmplib.ServerConn{RW: c}
	if err := sc.Initialize(); err != nil {
		log.Debug("rtmp handshake failed", "err", err)
		return
	}
	if err := sc.Accept(); err != nil {
		log.Debug("rtmp connect failed", "err", err)
		return
	}
	key, err := s.keyOf(sc.URL)
	if err != nil {
		log.Warn("rtmp refused", "url", sc.URL.String(), "err", err)
		return
	}
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

// keyOf derives vhost/app/stream from the joined tcUrl and stream name, as
// SRS does: the last path element is the stream, the rest the app.
func (s *Server) keyOf(u *url.URL) (hub.Key, error) {
	if u == nil {
		return hub.Key{}, ErrBadURL
	}
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 || i == len(p)-1 {
		return hub.Key{}, ErrBadURL
	}
	q := u.Query()
	vhost := q.Get("vhost")
	if vhost == "" {
		vhost = q.Get("domain")
	}
	if vhost == "" && s.cfg.Vhost != nil {
		vhost = s.cfg.Vhost(u.Hostname())
	}
	return hub.NewKey(vhost, p[:i], p[i+1:]), nil
}
