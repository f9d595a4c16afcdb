// Package candidate owns the server ICE candidate list: which host
// addresses and ports an answer advertises, computed exactly as SRS's
// discover_candidates does (eip, api_as_candidates, resolve_api_domain,
// keep_api_domain, the configured candidate, use_auto_detect_network_ip,
// ip_family, protocol udp|tcp|all).
//
// Package control imports it to answer offers, and cmd/internal/node to
// print the candidates in the start banner; it imports the standard
// library only.
// Compute is safe for concurrent use; it may block on DNS for at most
// LookupTimeout when resolve_api_domain applies.
package candidate

import (
	"context"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Candidate is one advertised transport address.
type Candidate struct {
	Host  string // IP literal (IPv6 without brackets) or, with keep_api_domain, a DNS name
	Port  int
	Proto string // "udp" or "tcp"
}

// Params is the rtc_server configuration that shapes candidates.
type Params struct {
	Candidates             []string // rtc_server.candidate values, $VAR already resolved; "*", "0.0.0.0" or "" = auto
	UseAutoDetectNetworkIP bool
	IPFamily               string // "ipv4" (default when ""), "ipv6" or "all"
	APIAsCandidates        bool
	ResolveAPIDomain       bool
	KeepAPIDomain          bool
	Protocol               string // "udp" (default when ""), "tcp" or "all"
	UDPPort, TCPPort       int
	TCPEnabled             bool
}

// Request is what the signalling request contributes.
type Request struct {
	EIP     string // ?eip= or ?candidate=: "ip", "ip:port", "[v6]" or "[v6]:port"
	APIHost string // Host header or ?vhost=, port allowed
}

// Env supplies the machine's view; nil fields use the real network.
type Env struct {
	// Interfaces returns every interface address, loopback included, in
	// the system's order (default: net.InterfaceAddrs).
	Interfaces func() []netip.Addr
	// LookupHost resolves a DNS name (default: net.DefaultResolver).
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
}

// LookupTimeout bounds the resolve_api_domain DNS lookup.
const LookupTimeout = 3 * time.Second

// entry is one member of SRS's candidate set: a host and an optional port
// that overrides both the UDP and the TCP port.
type entry struct {
	host string
	port int // 0 = the configured ports
}

// key is the string SRS keeps in its std::set, which fixes the sort order.
func (e entry) key() string {
	if e.port == 0 {
		return e.host
	}
	return net.JoinHostPort(e.host, strconv.Itoa(e.port))
}

// Compute returns the candidates for one session, hosts in SRS's sorted,
// de-duplicated order, each host's UDP candidate before its TCP one.
func Compute(p Params, r Request, e Env) []Candidate {
	hosts := discover(p, r, e)
	var out []Candidate
	wantUDP := p.Protocol == "" || strings.EqualFold(p.Protocol, "udp") || strings.EqualFold(p.Protocol, "all")
	wantTCP := p.TCPEnabled && (strings.EqualFold(p.Protocol, "tcp") || strings.EqualFold(p.Protocol, "all"))
	for _, h := range hosts {
		udp, tcp := p.UDPPort, p.TCPPort
		if h.port != 0 {
			udp, tcp = h.port, h.port
		}
		if wantUDP && udp > 0 {
			out = append(out, Candidate{Host: h.host, Port: udp, Proto: "udp"})
		}
		if wantTCP && tcp > 0 {
			out = append(out, Candidate{Host: h.host, Port: tcp, Proto: "tcp"})
		}
	}
	return out
}

// discover is SRS's discover_candidates (srs-reference §2).
func discover(p Params, r Request, e Env) []entry {
	set := map[string]entry{}
	add := func(en entry) { set[en.key()] = en }

	if en, ok := parseEntry(r.EIP); ok {
		add(en)
	}
	if p.APIAsCandidates {
		for _, en := range apiHost(p, r.APIHost, e) {
			add(en)
		}
	}
	fixed := false
	for _, c := range p.Candidates {
		c = strings.TrimSpace(c)
		if c == "" || c == "*" || c == "0.0.0.0" {
			continue
		}
		if en, ok := parseEntry(c); ok {
			add(en)
			fixed = true
		}
	}
	if !fixed {
		autoDetect(p, e, add, len(set) == 0)
	}
	out := make([]entry, 0, len(set))
	for _, en := range set {
		out = append(out, en)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// autoDetect adds the non-loopback interface addresses of ip_family; if
// the set is then still empty (wasEmpty and nothing added) it falls back to
// the first IPv4 interface address, loopback included, else the first one.
func autoDetect(p Params, e Env, add func(entry), wasEmpty bool) {
	ifaces := interfaces(e)
	if len(ifaces) == 0 {
		return
	}
	added := false
	if p.UseAutoDetectNetworkIP {
		for _, a := range ifaces {
			if a.IsLoopback() || a.IsUnspecified() || a.Is6() && a.IsLinkLocalUnicast() || !family(p.IPFamily, a) {
				continue
			}
			add(entry{host: a.String()})
			added = true
		}
	}
	if !wasEmpty || added {
		return
	}
	for _, a := range ifaces {
		if a.Is4() {
			add(entry{host: a.String()})
			return
		}
	}
	add(entry{host: ifaces[0].String()})
}

func family(f string, a netip.Addr) bool {
	switch strings.ToLower(f) {
	case "ipv6":
		return a.Is6()
	case "all":
		return true
	}
	return a.Is4()
}

// apiHost applies api_as_candidates to the API host name.
func apiHost(p Params, host string, e Env) []entry {
	host = stripPort(host)
	switch strings.ToLower(host) {
	case "", "localhost", "127.0.0.1", "0.0.0.0", "::":
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil
		}
		return []entry{{host: a.Unmap().String()}}
	}
	if !isDomain(host) {
		return nil
	}
	var out []entry
	if p.KeepAPIDomain {
		out = append(out, entry{host: strings.ToLower(host)})
	}
	if p.ResolveAPIDomain {
		if a, ok := resolve(e, host); ok {
			out = append(out, entry{host: a.String()})
		}
	}
	return out
}

// resolve returns the first usable address of host; SRS adds a single
// resolved address and skips loopback.
func resolve(e Env, host string) (netip.Addr, bool) {
	lookup := e.LookupHost
	if lookup == nil {
		lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !a.IsLoopback() && !a.IsUnspecified() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func interfaces(e Env) []netip.Addr {
	if e.Interfaces != nil {
		return e.Interfaces()
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr().Unmap())
		}
	}
	return out
}

// parseEntry parses "ip", "ip:port", "[v6]", "[v6]:port", "name" or
// "name:port". Anything else (garbage that could be written into the
// answer) is ignored.
func parseEntry(s string) (entry, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return entry{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return entry{host: a.Unmap().String()}, true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return entry{host: a.String()}, true
		}
		return entry{}, false
	}
	h, ps, err := net.SplitHostPort(s)
	if err != nil {
		h, ps = s, ""
	}
	en := entry{}
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		en.host = a.Unmap().String()
	} else if isDomain(h) {
		en.host = strings.ToLower(h)
	} else {
		return entry{}, false
	}
	if ps != "" {
		port, err := strconv.Atoi(ps)
		if err != nil || port <= 0 || port > 65535 {
			return entry{}, false
		}
		en.port = port
	}
	return en, true
}

// stripPort removes a ":port" from a Host header value, and the brackets
// from an IPv6 literal.
func stripPort(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// isDomain reports a plausible DNS name (RFC 1123 labels; '_' tolerated).
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
