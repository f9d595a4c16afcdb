package conf

import "time"

// Limits is Fanout's `limits { }` block: what one client, one stream and
// the HTTP listeners may take (SRS has only `max_connections`, which is
// Config.MaxConnections). A request over a rate limit is answered 429, over
// a capacity limit 503, both with Retry-After and a one-line reason, and
// counted on /metrics as fanout_limit_refusals_total{limit=…}. 0 turns a
// count or rate limit off.
type Limits struct {
	// RequestsPerIP is `requests_per_ip`: WHIP/WHEP/legacy signaling
	// requests per second from one source IP (a token bucket), default 50;
	// RequestBurst (`request_burst`) is the bucket's size, default 100.
	RequestsPerIP float64
	RequestBurst  int
	// SessionsPerIP is `sessions_per_ip`: offers (new sessions) per second
	// from one source IP, default 20; SessionBurst (`session_burst`) 40.
	SessionsPerIP float64
	SessionBurst  int
	// PlayersPerStream is `players_per_stream`, default 0: only
	// max_connections bounds them.
	PlayersPerStream int
	// PublishersPerIP is `publishers_per_ip`: live publishing sessions from
	// one source IP, default 16.
	PublishersPerIP int
	// SDPSize is `sdp_size`: the largest offer in bytes, default 64 KiB.
	SDPSize int
	// HTTPBodySize is `http_body_size`: the largest other request body
	// (legacy JSON, API), default 1 MiB.
	HTTPBodySize int
	// HTTPHeaderSize is `http_header_size`: http.Server.MaxHeaderBytes,
	// default 16 KiB.
	HTTPHeaderSize int
	// HTTP timeouts, in seconds in the file: `http_read_timeout` (the whole
	// request, headers and body; default 10s), `http_write_timeout` (the
	// answer of a non-streaming request; default 30s; HTTP-FLV streams lift
	// it) and `http_idle_timeout` (keep-alive, default 60s).
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// TCPConnsPerIP is `tcp_connections_per_ip`: open WebRTC-over-TCP
	// connections from one source IP, default 64.
	TCPConnsPerIP int
	// RTMPConnsPerIP is `rtmp_connections_per_ip`: open RTMP connections
	// from one source IP, default 16 (max_connections bounds them all, as
	// in SRS). A connection over either is closed at accept.
	RTMPConnsPerIP int
	// LiveRequestsPerIP is `live_requests_per_ip`: HTTP-FLV and HLS
	// requests per second from one source IP, default 50; LiveRequestBurst
	// (`live_request_burst`) is the bucket's size, default 100.
	LiveRequestsPerIP float64
	LiveRequestBurst  int
	// FLVStreamsPerIP is `flv_streams_per_ip`: HTTP-FLV streams open at
	// once from one source IP, default 16.
	FLVStreamsPerIP int
	// ExemptLoopback is `exempt_loopback`, default on: clients on
	// 127.0.0.0/8 and ::1 skip the per-IP limits (local benchmarks and
	// sidecars); max_connections, players_per_stream and the sizes still
	// apply to them.
	ExemptLoopback bool
}

func defaultLimits() Limits {
	return Limits{
		RequestsPerIP: 50, RequestBurst: 100, SessionsPerIP: 20, SessionBurst: 40,
		PublishersPerIP: 16, SDPSize: 64 << 10, HTTPBodySize: 1 << 20, HTTPHeaderSize: 16 << 10,
		HTTPReadTimeout: 10 * time.Second, HTTPWriteTimeout: 30 * time.Second, HTTPIdleTimeout: 60 * time.Second,
		TCPConnsPerIP: 64, RTMPConnsPerIP: 16, LiveRequestsPerIP: 50, LiveRequestBurst: 100, FLVStreamsPerIP: 16,
		ExemptLoopback: true,
	}
}

// limitEntries are the `limits { }` directives (env SRS_LIMITS_<NAME>).
func limitEntries() []*entry {
	lim := func(c *Config) *Limits { return &c.Limits }
	i := func(name string, f func(*Limits) *int, lo, hi int) *entry {
		return &entry{path: "limits." + name, set: global(func(c *Config) *int { return f(lim(c)) }, intIn(lo, hi))}
	}
	r := func(name string, f func(*Limits) *float64) *entry {
		return &entry{path: "limits." + name, set: global(func(c *Config) *float64 { return f(lim(c)) }, rate)}
	}
	d := func(name string, f func(*Limits) *time.Duration) *entry {
		return &entry{path: "limits." + name, set: global(func(c *Config) *time.Duration { return f(lim(c)) }, seconds(24*time.Hour))}
	}
	return []*entry{
		r("requests_per_ip", func(l *Limits) *float64 { return &l.RequestsPerIP }),
		i("request_burst", func(l *Limits) *int { return &l.RequestBurst }, 1, 1_000_000),
		r("sessions_per_ip", func(l *Limits) *float64 { return &l.SessionsPerIP }),
		i("session_burst", func(l *Limits) *int { return &l.SessionBurst }, 1, 1_000_000),
		i("players_per_stream", func(l *Limits) *int { return &l.PlayersPerStream }, 0, 10_000_000),
		i("publishers_per_ip", func(l *Limits) *int { return &l.PublishersPerIP }, 0, 10_000_000),
		i("sdp_size", func(l *Limits) *int { return &l.SDPSize }, 1024, 1<<20),
		i("http_body_size", func(l *Limits) *int { return &l.HTTPBodySize }, 1024, 64<<20),
		i("http_header_size", func(l *Limits) *int { return &l.HTTPHeaderSize }, 1024, 1<<20),
		d("http_read_timeout", func(l *Limits) *time.Duration { return &l.HTTPReadTimeout }),
		d("http_write_timeout", func(l *Limits) *time.Duration { return &l.HTTPWriteTimeout }),
		d("http_idle_timeout", func(l *Limits) *time.Duration { return &l.HTTPIdleTimeout }),
		i("tcp_connections_per_ip", func(l *Limits) *int { return &l.TCPConnsPerIP }, 0, 1_000_000),
		i("rtmp_connections_per_ip", func(l *Limits) *int { return &l.RTMPConnsPerIP }, 0, 1_000_000),
		r("live_requests_per_ip", func(l *Limits) *float64 { return &l.LiveRequestsPerIP }),
		i("live_request_burst", func(l *Limits) *int { return &l.LiveRequestBurst }, 1, 1_000_000),
		i("flv_streams_per_ip", func(l *Limits) *int { return &l.FLVStreamsPerIP }, 0, 1_000_000),
		{path: "limits.exempt_loopback", set: global(func(c *Config) *bool { return &c.Limits.ExemptLoopback }, flag)},
	}
}

// rate is a non-negative number per second; 0 is off.
func rate(args []string) (float64, error) {
	f, err := number(args)
	if err == nil && f < 0 {
		err = badValue("%v, want >= 0 (0 = off)", f)
	}
	return f, err
}
