package control

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/fanout/fanout/control/httpapi"
)

// Limits are the capacity limits checked when a session registers; 0 is
// no limit. Each refusal is a 503 with Retry-After, counted by the HTTP
// layer under the limit's name (httpapi.API.LimitRefusals).
type Limits struct {
	// MaxSessions is SRS's max_connections: live sessions, the RTMP
	// bridge's virtual publishers included.
	MaxSessions int
	// PlayersPerStream bounds one stream's players.
	PlayersPerStream int
	// PublishersPerIP bounds the live publishers of one limited source
	// (httpapi.Offer.Source: loopback is exempt when so configured).
	PublishersPerIP int
}

// capacityRetry is the Retry-After of a capacity refusal: sessions come
// and go in seconds.
const capacityRetry = 5 * time.Second

// admitLocked refuses an offer over a capacity limit.
func (s *Server) admitLocked(o offer, st *stream) error {
	l := s.cfg.Limits
	switch {
	case l.MaxSessions > 0 && len(s.sessions) >= l.MaxSessions:
		return httpapi.LimitError(http.StatusServiceUnavailable, httpapi.LimitMaxConnections, capacityRetry,
			"server full: %d sessions (max_connections)", len(s.sessions))
	case o.Play && l.PlayersPerStream > 0 && len(st.players) >= l.PlayersPerStream:
		return httpapi.LimitError(http.StatusServiceUnavailable, httpapi.LimitPlayersPerStream, capacityRetry,
			"stream %s full: %d players (limits.players_per_stream)", st.key, len(st.players))
	case !o.Play && o.Source.IsValid() && l.PublishersPerIP > 0 && s.pubsByIP[o.Source] >= l.PublishersPerIP:
		return httpapi.LimitError(http.StatusServiceUnavailable, httpapi.LimitPublishersPerIP, capacityRetry,
			"%d publishers from %s (limits.publishers_per_ip)", s.pubsByIP[o.Source], o.Source)
	}
	return nil
}

// releaseSourceLocked uncounts an ending publisher from its source.
func (s *Server) releaseSourceLocked(ss *session) {
	if !ss.source.IsValid() {
		return
	}
	if s.pubsByIP[ss.source]--; s.pubsByIP[ss.source] <= 0 {
		delete(s.pubsByIP, ss.source)
	}
	ss.source = netip.Addr{}
}

// LimitRefusals counts refusals over a limit (HTTP layer and registry,
// and the sessions' address moves), by limit name.
func (s *Server) LimitRefusals() map[string]uint64 {
	m := s.api.LimitRefusals()
	s.mu.Lock()
	n := s.counts.AddrMovesRefused
	s.unlock()
	if n > 0 {
		m[LimitAddressMoves] = n
	}
	return m
}

// LimitLive wraps the HTTP-FLV and HLS handler with the per-IP limits of
// Config.HTTPLimits (httpapi.API.LimitLive).
func (s *Server) LimitLive(h http.Handler) http.Handler { return s.api.LimitLive(h) }

// DTLSQueueDrops counts DTLS records dropped because their session's
// queue to its DTLS goroutine was full.
func (s *Server) DTLSQueueDrops() uint64 { return s.dtlsQueueDrops.Load() }
