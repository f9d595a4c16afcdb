package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// IPCount bounds what one source IP holds open at once (HTTP-FLV streams
// here, RTMP connections in cmd). An entry lives while its IP holds
// something, so the map is bounded by what is open. A nil *IPCount admits
// everything. Safe for concurrent use.
type IPCount struct {
	max int
	mu  sync.Mutex
	m   map[netip.Addr]int
}

// NewIPCount returns a bound of max per IP, or nil (off) when max is not
// positive.
func NewIPCount(max int) *IPCount {
	if max <= 0 {
		return nil
	}
	return &IPCount{max: max, m: map[netip.Addr]int{}}
}

// Acquire counts one more for ip, or says false when ip is at the bound.
// Each true needs one Release.
func (c *IPCount) Acquire(ip netip.Addr) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[ip] >= c.max {
		return false
	}
	c.m[ip]++
	return true
}

// Release uncounts one of ip's.
func (c *IPCount) Release(ip netip.Addr) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.m[ip]--; c.m[ip] <= 0 {
		delete(c.m, ip)
	}
	c.mu.Unlock()
}

// Max is the bound (0 when off).
func (c *IPCount) Max() int {
	if c == nil {
		return 0
	}
	return c.max
}

// liveCapacityRetry is the Retry-After of a flv_streams_per_ip refusal:
// a player that gave up frees its slot at once.
const liveCapacityRetry = 5 * time.Second

// LimitLive wraps the HTTP-FLV and HLS handler with their per-IP limits:
// live_requests_per_ip (429 + Retry-After) on every request and
// flv_streams_per_ip (503 + Retry-After) on the open `.flv` streams, both
// counted like the signaling's refusals. The ResponseWriter is passed on
// as is, so the handler can still lift its write deadline.
func (a *API) LimitLive(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, limited := a.sourceKey(r)
		if !limited {
			h.ServeHTTP(w, r)
			return
		}
		if ok, retry := a.live.Take(ip, time.Now()); !ok {
			a.writeError(w, r, LimitError(http.StatusTooManyRequests, LimitLiveRequestsPerIP, retry,
				"too many HTTP-FLV/HLS requests from %s: limit %g/s", ip, a.opts.Limits.LiveRequestsPerSec))
			return
		}
		if !strings.HasSuffix(r.URL.Path, ".flv") {
			h.ServeHTTP(w, r)
			return
		}
		if !a.flvStreams.Acquire(ip) {
			a.writeError(w, r, LimitError(http.StatusServiceUnavailable, LimitFLVStreamsPerIP, liveCapacityRetry,
				"%d HTTP-FLV streams open from %s (limits.flv_streams_per_ip)", a.flvStreams.Max(), ip))
			return
		}
		defer a.flvStreams.Release(ip)
		h.ServeHTTP(w, r)
	})
}
