package main

import (
	"net/http"

	"github.com/fanout/fanout/cmd/internal/pages"
	"github.com/fanout/fanout/cmd/internal/rooms"
)

// The HTTP server (SRS's 8080) serves the built-in players and demos, and
// the demos' signaling WebSocket at /sig/v1/rtc (SRS runs a separate
// signaling server on 1989 for them; here it shares the pages' origin).
func init() {
	httpRoutes = append(httpRoutes, func(s *Server, mux *http.ServeMux) {
		pages.Register(mux)
		sig := rooms.New(rooms.Config{Logger: s.log.With("part", "signaling")})
		mux.Handle("/sig/v1/rtc", sig)
		// Runs after the HTTP server's own closer (closers run in reverse),
		// which leaves hijacked WebSockets open for sig.Close to end.
		s.closers = append(s.closers, sig.Close)
	})
}
