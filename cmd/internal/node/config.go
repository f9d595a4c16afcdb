package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"time"

	"github.com/fanout/fanout/bridge"
	"github.com/fanout/fanout/conf"
	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/control/httpapi"
)

// listens is where each listener binds: the configured addresses, or
// Options' overrides.
type listens struct {
	api, http, rtc, tcp, apiTLS, httpTLS netip.AddrPort
	rtmp                                 []netip.AddrPort
}

// listens applies o's overrides to the configured addresses.
func (o Options) listens(cfg *conf.Config) (listens, error) {
	l := listens{api: cfg.HTTPAPI.Listen, http: cfg.HTTPServer.Listen, tcp: cfg.RTCServer.TCP.Listen,
		apiTLS: cfg.HTTPAPI.HTTPS.Listen, httpTLS: cfg.HTTPServer.HTTPS.Listen, rtmp: cfg.Listen}
	if len(cfg.RTCServer.Listen) > 0 {
		l.rtc = cfg.RTCServer.Listen[0]
	}
	var rtmp netip.AddrPort
	for _, ov := range []struct {
		name string
		val  string
		dst  *netip.AddrPort
	}{
		{"api", o.APIListen, &l.api}, {"http", o.HTTPListen, &l.http}, {"rtc", o.RTCListen, &l.rtc},
		{"tcp", o.TCPListen, &l.tcp}, {"https api", o.HTTPSAPIListen, &l.apiTLS},
		{"https", o.HTTPSListen, &l.httpTLS}, {"rtmp", o.RTMPListen, &rtmp},
	} {
		if ov.val == "" {
			continue
		}
		a, err := conf.ParseListen(ov.val)
		if err != nil {
			return listens{}, fmt.Errorf("%s listen override: %w", ov.name, err)
		}
		*ov.dst = a
	}
	if rtmp.IsValid() {
		l.rtmp = []netip.AddrPort{rtmp}
	}
	return l, nil
}

// config is the live configuration: vhost options (rtc, hooks, remux)
// take effect on reload for new sessions.
func (s *Server) config() *conf.Config { return s.live.Load() }

// candidateParams is rtc_server's candidate configuration with the bound
// ports, as control computes every answer's candidates from it.
func (s *Server) candidateParams() candidate.Params {
	r := s.cfg.RTCServer
	return candidate.Params{
		Candidates: r.Candidates, UseAutoDetectNetworkIP: r.UseAutoDetectNetworkIP, IPFamily: r.IPFamily,
		APIAsCandidates: r.APIAsCandidates, ResolveAPIDomain: r.ResolveAPIDomain, KeepAPIDomain: r.KeepAPIDomain,
		Protocol: r.Protocol, UDPPort: s.fp.Port(), TCPPort: s.tcpPort(), TCPEnabled: r.TCP.Enabled,
	}
}

func (s *Server) controlConfig() control.Config {
	c := s.baseControlConfig()
	if s.clink != nil { // never a typed nil in the interfaces
		c.Events = teeEvents{s.link, s.clink}
		c.Placement, c.Cluster = s.clink, s.clink.status
	}
	return c
}

func (s *Server) baseControlConfig() control.Config {
	r := s.cfg.RTCServer
	var peers control.Peers
	if s.shield != nil { // no typed nil in the interface
		peers = s.shield
	}
	return control.Config{
		Peers:       peers,
		Candidates:  s.candidateParams(),
		Crossdomain: s.cfg.HTTPAPI.Crossdomain,
		PreferCM:    s.opts.PreferCM,
		CloseTCP:    s.closeTCP,
		Logger:      s.log,
		Vhost: func(name string) control.RTCOptions {
			v := s.config().Vhost(name).RTC
			h := s.config().Vhost(name).HTTPHooks
			return control.RTCOptions{
				Enabled: v.Enabled && r.Enabled, NACK: v.NACK, TWCC: v.TWCC, KeyframeCache: v.KeyframeCache,
				STUNTimeout: v.STUNTimeout, DTLSRole: v.DTLSRole,
				Hooks: control.Hooks{Enabled: h.Enabled, OnPublish: h.OnPublish, OnUnpublish: h.OnUnpublish,
					OnPlay: h.OnPlay, OnStop: h.OnStop},
			}
		},
		BearerToken: s.cfg.HTTPAPI.Auth.BearerToken,
		APIAuth: struct {
			Enabled            bool
			Username, Password string
		}{s.cfg.HTTPAPI.Auth.Enabled, s.cfg.HTTPAPI.Auth.Username, s.cfg.HTTPAPI.Auth.Password},
		Summary: s.summary,
		VhostOf: s.vhostOf,
		Limits: control.Limits{MaxSessions: s.cfg.MaxConnections, PlayersPerStream: s.cfg.Limits.PlayersPerStream,
			PublishersPerIP: s.cfg.Limits.PublishersPerIP},
		HTTPLimits: httpLimits(s.cfg.Limits),
		Events:     s.link,
		Pull:       s.pull,
		Vhosts: func() []string {
			vh := s.config().Vhosts
			names := make([]string, 0, len(vh))
			for n := range vh {
				names = append(names, n)
			}
			sort.Strings(names)
			return names
		},
	}
}

// httpLimits maps `limits { }` onto the HTTP layer's per-IP limits.
func httpLimits(l conf.Limits) httpapi.Limits {
	return httpapi.Limits{RequestsPerSec: l.RequestsPerIP, RequestBurst: l.RequestBurst,
		SessionsPerSec: l.SessionsPerIP, SessionBurst: l.SessionBurst, SDPSize: l.SDPSize,
		BodySize: l.HTTPBodySize, ExemptLoopback: l.ExemptLoopback,
		LiveRequestsPerSec: l.LiveRequestsPerIP, LiveRequestBurst: l.LiveRequestBurst, FLVStreamsPerIP: l.FLVStreamsPerIP}
}

// vhostOf maps a host (RTMP tcUrl, HTTP Host, WHIP query) to a configured
// vhost name, else __defaultVhost__, as SRS does; WebRTC and the bridge
// must agree on it for a stream to be the same on both sides.
func (s *Server) vhostOf(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, ok := s.config().Vhosts[host]; ok {
		return host
	}
	return conf.DefaultVhost
}

// bridgeOptions maps a vhost's rtc, http_remux and hls blocks.
func (s *Server) bridgeOptions(vhost string) bridge.VhostOptions {
	c := s.config()
	v := c.Vhost(vhost)
	return bridge.VhostOptions{
		RTMPToRTC:   v.RTC.RTMPToRTC && v.RTC.Enabled && c.RTCServer.Enabled,
		KeepBframe:  v.RTC.KeepBframe,
		DropSEI:     !v.RTC.KeepAVCNaluSEI,
		OpusBitrate: v.RTC.OpusBitrate,
		AACBitrate:  v.RTC.AACBitrate,
		PLIForRTMP:  v.RTC.PLIForRTMP,
		FLV:         v.HTTPRemux.Enabled,
		HLS:         v.HLS.Enabled,
		HLSFragment: v.HLS.Fragment,
		HLSWindow:   v.HLS.Window,
	}
}

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
		{"cluster", cur.Cluster, next.Cluster},
		{"max_connections", cur.MaxConnections, next.MaxConnections},
		{"limits", cur.Limits, next.Limits},
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
