package httpapi

import (
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Limits are the per-source-IP limits the HTTP layer applies to signaling
// (conf's `limits { }`); zero rates are off. The source IP is the TCP peer
// of the request, never X-Forwarded-For (which the client writes); IPv6
// peers are keyed by their /64, the block one host usually holds.
type Limits struct {
	RequestsPerSec float64 // WHIP/WHEP/legacy requests per second per IP
	RequestBurst   int
	SessionsPerSec float64 // offers per second per IP
	SessionBurst   int
	SDPSize        int  // largest offer, bytes; default 256 KiB
	BodySize       int  // largest legacy JSON body, bytes; default 1 MiB
	ExemptLoopback bool // 127.0.0.0/8 and ::1 skip the per-IP rates

	// HTTP-FLV and HLS (LimitLive): requests per second per IP, and
	// HTTP-FLV streams open at once per IP.
	LiveRequestsPerSec float64
	LiveRequestBurst   int
	FLVStreamsPerIP    int
}

// Limit names: the `limit` label of fanout_limit_refusals_total, and the
// name of the directive that sets each.
const (
	LimitRequestsPerIP     = "requests_per_ip"
	LimitSessionsPerIP     = "sessions_per_ip"
	LimitSDPSize           = "sdp_size"
	LimitBodySize          = "http_body_size"
	LimitMaxConnections    = "max_connections"
	LimitPlayersPerStream  = "players_per_stream"
	LimitPublishersPerIP   = "publishers_per_ip"
	LimitLiveRequestsPerIP = "live_requests_per_ip"
	LimitFLVStreamsPerIP   = "flv_streams_per_ip"
)

// LimitError refuses a request over a limit: 429 for a rate, 503 for a
// capacity (both with Retry-After), 413 for a size.
func LimitError(status int, limit string, retry time.Duration, format string, args ...any) *Error {
	e := Errorf(status, format, args...)
	e.Limit, e.RetryAfter = limit, retry
	return e
}

// maxTrackedIPs bounds each rate limiter's table: beyond it, full (idle)
// buckets are swept, then arbitrary ones evicted, so a spray of source
// addresses costs memory only up to here.
const maxTrackedIPs = 1 << 16

// bucket is one IP's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// IPRate is a token bucket per source IP, in a bounded map: the one rate
// limiter of the HTTP signaling, HTTP-FLV and HLS. A nil *IPRate admits
// everything. Safe for concurrent use.
type IPRate struct {
	rate, burst float64
	mu          sync.Mutex
	m           map[netip.Addr]*bucket
}

// NewIPRate returns a limiter of rate per second with a burst, or nil
// (off) when rate is not positive.
func NewIPRate(rate float64, burst int) *IPRate {
	if rate <= 0 {
		return nil
	}
	return &IPRate{rate: rate, burst: float64(max(burst, 1)), m: map[netip.Addr]*bucket{}}
}

// Take spends one token of ip's bucket; when none is left it says how long
// until one is.
func (l *IPRate) Take(ip netip.Addr, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[ip]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{tokens: l.burst, last: now}
		l.m[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// makeRoom keeps the table under maxTrackedIPs: it drops the buckets that
// have refilled (forgetting them changes nothing), then any.
func (l *IPRate) makeRoom(now time.Time) {
	if len(l.m) < maxTrackedIPs {
		return
	}
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for ip, b := range l.m {
		if now.Sub(b.last) >= full {
			delete(l.m, ip)
		}
	}
	for ip := range l.m {
		if len(l.m) < maxTrackedIPs {
			break
		}
		delete(l.m, ip)
	}
}

// sourceKey is the limiter key of a request's TCP peer: the address, or
// its /64 for IPv6; ok is false for loopback when it is exempt.
func (a *API) sourceKey(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		h, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return netip.Addr{}, true // httptest's "1.2.3.4:1234" parses; anything else shares one bucket
		}
		ap = netip.AddrPortFrom(ip, 0)
	}
	return SourceKey(ap.Addr(), a.opts.Limits.ExemptLoopback)
}

// SourceKey is the per-IP limiters' key of a source address: the address,
// or its /64 for IPv6 (the block one host usually holds); limited is false
// for loopback when exempt.
func SourceKey(ip netip.Addr, exemptLoopback bool) (key netip.Addr, limited bool) {
	ip = ip.Unmap()
	if exemptLoopback && ip.IsLoopback() {
		return ip, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// admit applies the per-IP request rate, and for an offer the session
// rate; nil means go on.
func (a *API) admit(r *http.Request, offer bool) *Error {
	ip, limited := a.sourceKey(r)
	if !limited {
		return nil
	}
	now := time.Now()
	if ok, retry := a.requests.Take(ip, now); !ok {
		return LimitError(http.StatusTooManyRequests, LimitRequestsPerIP, retry,
			"too many requests from %s: limit %g/s", ip, a.opts.Limits.RequestsPerSec)
	}
	if !offer {
		return nil
	}
	if ok, retry := a.sessions.Take(ip, now); !ok {
		return LimitError(http.StatusTooManyRequests, LimitSessionsPerIP, retry,
			"too many new sessions from %s: limit %g/s", ip, a.opts.Limits.SessionsPerSec)
	}
	return nil
}

// LimitRefusals counts the refusals over a limit, by limit name.
func (a *API) LimitRefusals() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.limits)
}

// retryAfter sets Retry-After for a refusal that has one: whole seconds,
// at least 1 (RFC 9110 §10.2.3).
func retryAfter(w http.ResponseWriter, err error) {
	e, ok := err.(*Error)
	switch {
	case ok && e.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((e.RetryAfter+time.Second-1)/time.Second))))
	case statusOf(err) == http.StatusServiceUnavailable || statusOf(err) == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "5")
	}
}
