package main

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/fanout/fanout/conf"
)

// config is the live configuration: vhost options (rtc, hooks) take
// effect on reload for new sessions.
func (s *Server) config() *conf.Config { return s.live.Load() }

// Reload swaps in a new configuration and returns the sections that changed
// but only take effect after a restart (listeners, fastpath, candidates).
func (s *Server) Reload(next *conf.Config) []string {
	cur := s.cfg
	var restart []string
	for _, c := range []struct {
		name string
		a, b any
	}{
		{"listen", cur.Listen, next.Listen},
		{"http_api", cur.HTTPAPI, next.HTTPAPI},
		{"http_server", cur.HTTPServer, next.HTTPServer},
		{"rtc_server", cur.RTCServer, next.RTCServer},
		{"fastpath", cur.Fastpath, next.Fastpath},
	} {
		if !reflect.DeepEqual(c.a, c.b) {
			restart = append(restart, c.name)
		}
	}
	s.live.Store(next)
	return restart
}

// Drain stops taking sessions, waits up to timeout for the live ones to end,
// then closes everything.
func (s *Server) Drain(timeout time.Duration) (left int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	left = s.ctl.Drain(ctx)
	s.Close()
	return left
}

func describeRestart(sections []string) string {
	if len(sections) == 0 {
		return "none"
	}
	return fmt.Sprint(sections)
}
