package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fanout/fanout/cmd/internal/pages"
)

// mux is every HTTP route Fanout serves, in one place. The API port (SRS's
// 1985, api) has WHIP/WHEP and the legacy /rtc/v1/ API, SRS's /api/v1/,
// /healthz and Prometheus's /metrics. The HTTP server port (SRS's 8080,
// server) has the built-in players and demos, the demos' signaling
// WebSocket at /sig/v1/rtc (SRS runs a separate signaling server on 1989;
// here it shares the pages' origin) and, at "/", HTTP-FLV and HLS. When
// both share one port the mux has both sets.
func (s *Server) mux(api, server bool) *http.ServeMux {
	mux := http.NewServeMux()
	if api {
		s.ctl.Register(mux)    // /rtc/v1/whip/, whep/, whip-play/, publish/, play/
		s.ctl.RegisterAPI(mux) // /api/v1/…, /healthz
		mux.Handle("/metrics", s.metricsHandler())
	}
	if server {
		pages.Register(mux) // /{$} → players, /players/, /demos/
		mux.Handle("/sig/v1/rtc", s.sig)
		// "/" is the least specific pattern: the routes above win over it.
		// Under the per-IP live_requests_per_ip and flv_streams_per_ip.
		mux.Handle("/", s.ctl.LimitLive(s.link.b.Handler())) // /app/stream.flv, .m3u8, .ts
	}
	return mux
}

// metricsHandler serves SRS's exporter names where SRS has them and
// fanout_* for the fastpath's per-core counters (metrics.go).
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&metrics{s: s}, bridgeMetrics{s: s}, &shieldMetrics{s: s}, relayMetrics{s: s})
	if s.clink != nil {
		reg.MustRegister(clusterMetrics{c: s.clink})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
