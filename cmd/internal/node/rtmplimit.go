package node

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/control/httpapi"
)

// rtmpLimit bounds the RTMP connections: limits.rtmp_connections_per_ip
// per source IP (httpapi's IPCount and SourceKey, the limiter the HTTP
// layer uses: IPv6 by /64, loopback exempt when so configured) and SRS's
// max_connections in all, as SRS bounds its RTMP clients. A connection
// over either is closed at accept, before the handshake: RTMP can only say
// why after its connect command (an _error with a description), and
// reaching it costs the server the handshake's 3 KiB each way, a goroutine
// and up to the handshake timeout per connection, which is what a flood
// wants to spend. The refusal is counted (fanout_limit_refusals_total) and
// logged at most once a second.
type rtmpLimit struct {
	perIP  *httpapi.IPCount
	max    int64 // 0 = no total bound
	exempt bool
	log    *slog.Logger

	open                  atomic.Int64
	refusedIP, refusedMax atomic.Uint64
	lastLog               atomic.Int64 // unix ns
}

func newRTMPLimit(perIP, maxConns int, exempt bool, log *slog.Logger) *rtmpLimit {
	return &rtmpLimit{perIP: httpapi.NewIPCount(perIP), max: int64(max(maxConns, 0)), exempt: exempt, log: log}
}

// listener wraps ln so that Accept hands out only admitted connections.
func (l *rtmpLimit) listener(ln net.Listener) net.Listener { return &rtmpListener{Listener: ln, l: l} }

// admit counts c, or says which limit refuses it.
func (l *rtmpLimit) admit(c net.Conn) (net.Conn, string) {
	if n := l.open.Add(1); l.max > 0 && n > l.max {
		l.open.Add(-1)
		l.refusedMax.Add(1)
		return nil, httpapi.LimitMaxConnections
	}
	lc := &rtmpConn{Conn: c, l: l}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		if ip, limited := httpapi.SourceKey(ap.Addr(), l.exempt); limited {
			if !l.perIP.Acquire(ip) {
				l.open.Add(-1)
				l.refusedIP.Add(1)
				return nil, "rtmp_connections_per_ip"
			}
			lc.ip = ip
		}
	}
	return lc, ""
}

// refused closes a refused connection and logs it, once a second at most.
func (l *rtmpLimit) refused(c net.Conn, limit string) {
	_ = c.Close()
	now := time.Now().UnixNano()
	if last := l.lastLog.Load(); now-last >= int64(time.Second) && l.lastLog.CompareAndSwap(last, now) {
		l.log.Warn("rtmp refused", "limit", limit, "remote", c.RemoteAddr().String())
	}
}

// refusals are the refusals by limit name, for /metrics.
func (l *rtmpLimit) refusals() map[string]uint64 {
	return map[string]uint64{"rtmp_connections_per_ip": l.refusedIP.Load(), httpapi.LimitMaxConnections: l.refusedMax.Load()}
}

// rtmpListener is a listener whose connections are under rtmpLimit.
type rtmpListener struct {
	net.Listener
	l *rtmpLimit
}

func (ln *rtmpListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, limit := ln.l.admit(c)
		if lc != nil {
			return lc, nil
		}
		ln.l.refused(c, limit)
	}
}

// rtmpConn uncounts itself on its first Close.
type rtmpConn struct {
	net.Conn
	l    *rtmpLimit
	ip   netip.Addr // counted in perIP; invalid = not counted
	once sync.Once
}

func (c *rtmpConn) Close() error {
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.ip.IsValid() {
			c.l.perIP.Release(c.ip)
		}
	})
	return c.Conn.Close()
}
