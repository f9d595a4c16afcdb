package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/relay"
	"github.com/fanout/fanout/fastpath/route"
)

// Relays (issue 17's edge): with a Locator, a play of a stream another
// node owns opens one WHEP pull from it (control/relay), fed into this
// node's fastpath as a virtual publisher through control.Config.Pull.
// RTMP, HTTP-FLV and HLS players ask through the bridge's hub (Config.Want,
// want below): the same Pull opens or shares the relay, and the relay's
// virtual publisher is bridged into the hub as rtc_to_rtmp bridges a
// WebRTC publisher (on vhosts with rtc_to_rtmp on). A relay counts those
// players too (relayHost.Players); HLS players, who hold no reader, keep
// it open by polling within its grace period (each request is a Want).

// RelayOptions turn relaying on.
type RelayOptions struct {
	// Locator names a stream's owner; nil (the default) is the cluster
	// registry with cluster { enabled on; }, else no relays.
	Locator relay.Locator
	// Self is this node's base URL as Locator names it; default the
	// cluster's advertised URL, else "http://" + the bound API address.
	Self string
	// Grace is how long a relay outlives its last local player; 0 is
	// relay.DefaultGrace (10 s).
	Grace time.Duration
	// BearerToken is sent to the owners' WHEP; default this node's own
	// http_api bearer token (one token per cluster).
	BearerToken string
}

// startRelays creates the relay manager once the API address is known.
func (s *Server) startRelays() error {
	o := s.opts.Relay
	nodeID := ""
	if m := s.ClusterMember(); o.Locator == nil && m != nil {
		o.Locator = m // cluster { enabled on; }: the Redis registry names owners
		nodeID = m.ID()
		if o.Self == "" {
			o.Self = m.URL()
		}
	}
	if o.Locator == nil {
		return nil
	}
	if o.Self == "" {
		o.Self = "http://" + s.APIAddr().String()
	}
	if o.BearerToken == "" {
		o.BearerToken = s.cfg.HTTPAPI.Auth.BearerToken
	}
	m, err := relay.New(relay.Config{Locator: o.Locator, Host: relayHost{s}, Self: o.Self, NodeID: nodeID,
		BearerToken: o.BearerToken, Grace: o.Grace, Logger: s.log.With("part", "relay")})
	if err != nil {
		return err
	}
	s.relays.Store(m)
	s.SetClusterRelays(func() any { return m.Relays() })
	s.closers = append(s.closers, m.Close) // before control: its virtual publishers end first
	return nil
}

// pull is control.Config.Pull.
func (s *Server) pull(ctx context.Context, vhost, app, stream string) error {
	if m := s.relays.Load(); m != nil {
		return m.Pull(ctx, vhost, app, stream)
	}
	return nil
}

// want is the bridge hub's Config.Want: an RTMP, HTTP-FLV or HLS player
// asks for a stream; pull it from its owner unless it is published here
// or the vhost does not bridge WebRTC streams (rtc_to_rtmp off: a relay
// would never reach the hub).
func (s *Server) want(ctx context.Context, key hub.Key) {
	m := s.relays.Load()
	if m == nil || m.Touch(key.Vhost, key.App, key.Stream) || !s.config().Vhost(key.Vhost).RTC.RTCToRTMP ||
		s.ctl.HasPublisher(key.Vhost, key.App, key.Stream) {
		return
	}
	if err := m.Pull(ctx, key.Vhost, key.App, key.Stream); err != nil {
		s.log.Info("relay for a bridge player failed", "stream", key.String(), "err", err)
	}
}

// Relays lists the open relays (for /api/v1/cluster); nil without a Locator.
func (s *Server) Relays() []relay.Info {
	if m := s.relays.Load(); m != nil {
		return m.Relays()
	}
	return nil
}

// RelayStats reads the relay counters; zero without a Locator.
func (s *Server) RelayStats() relay.Stats {
	if m := s.relays.Load(); m != nil {
		return m.Stats()
	}
	return relay.Stats{}
}

// relayHost is relay.Host over this node's control and fastpath.
type relayHost struct{ s *Server }

// OpenVirtual registers the relay's virtual publisher and bridges it to
// RTMP, HTTP-FLV and HLS (rtc_to_rtmp on the vhost) until it ends.
func (h relayHost) OpenVirtual(vhost, app, stream string, audio, video *control.VirtualTrack) (*control.VirtualPublisher, error) {
	vp, err := h.s.ctl.OpenVirtual(vhost, app, stream, audio, video)
	if err != nil || h.s.link == nil || h.s.link.b == nil {
		return vp, err
	}
	info := vp.Info()
	h.s.link.PublisherReady(info)
	go func() {
		<-vp.Done()
		h.s.link.PublisherGone(info)
	}()
	return vp, nil
}

// Players counts WebRTC players and the bridge's RTMP and HTTP-FLV ones.
func (h relayHost) Players(vhost, app, stream string) int {
	n := h.s.ctl.StreamPlayers(vhost, app, stream)
	if l := h.s.link; l != nil && l.b != nil {
		n += l.b.Players(hub.NewKey(vhost, app, stream))
	}
	return n
}

func (h relayHost) HasPublisher(vhost, app, stream string) bool {
	return h.s.ctl.HasPublisher(vhost, app, stream)
}

func (h relayHost) Inject(sid route.SessionID, pkt []byte) bool { return h.s.fp.Inject(sid, pkt) }

var (
	mRelays      = prometheus.NewDesc("fanout_cluster_relays", "Relays open: streams pulled from their owner node.", nil, nil)
	mRelayBytes  = prometheus.NewDesc("fanout_cluster_relay_bytes_total", "RTP bytes received from upstream owners.", nil, nil)
	mRelayPkts   = prometheus.NewDesc("fanout_cluster_relay_packets_total", "RTP packets received from upstream owners.", nil, nil)
	mRelayEvents = prometheus.NewDesc("fanout_cluster_relay_events_total",
		"Relay events: opened, reconnects, dial failures, refusals, PLIs sent upstream, locate errors, inject drops.", []string{"event"}, nil)
)

// relayMetrics exports relay.Stats on /metrics.
type relayMetrics struct{ s *Server }

func (m relayMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- mRelays
	ch <- mRelayBytes
	ch <- mRelayPkts
	ch <- mRelayEvents
}

func (m relayMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.s.RelayStats()
	ch <- prometheus.MustNewConstMetric(mRelays, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(mRelayBytes, prometheus.CounterValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(mRelayPkts, prometheus.CounterValue, float64(st.Packets))
	for _, e := range []struct {
		name string
		n    uint64
	}{{"opened", st.Opened}, {"reconnect", st.Reconnects}, {"dial_failed", st.Failures},
		{"refused", st.UpstreamRefused}, {"pli_upstream", st.KeyframeReqs}, {"locate_error", st.LocateErrors},
		{"inject_dropped", st.InjectDropped}} {
		ch <- prometheus.MustNewConstMetric(mRelayEvents, prometheus.CounterValue, float64(e.n), e.name)
	}
}
