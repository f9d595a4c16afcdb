package tcpio

import (
	"net/netip"
	"sync"
)

// perIP counts open connections by source, for Config.MaxConnsPerIP. It
// is touched at accept and close only (never per frame), under its mutex;
// an entry lives while its source has a connection open, so the map is
// bounded by the open connections.
type perIP struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
}

// ipKey is the counting key of a source: the address, an IPv6 one by its
// /64 (the block one host usually holds).
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admit counts c against its source, or refuses it when the source is at
// the bound.
func (s *Server) admit(c *conn, remote netip.Addr) bool {
	limit := s.cfg.MaxConnsPerIP
	if limit <= 0 || s.cfg.ExemptLoopback && remote.Unmap().IsLoopback() {
		return true
	}
	k := ipKey(remote)
	p := &s.perIP
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[netip.Addr]int32{}
	}
	if p.m[k] >= int32(limit) {
		return false
	}
	p.m[k]++
	c.ipKey = k
	return true
}

// release uncounts a closed connection.
func (s *Server) release(c *conn) {
	if !c.ipKey.IsValid() {
		return
	}
	p := &s.perIP
	p.mu.Lock()
	if p.m[c.ipKey]--; p.m[c.ipKey] <= 0 {
		delete(p.m, c.ipKey)
	}
	p.mu.Unlock()
	c.ipKey = netip.Addr{}
}
