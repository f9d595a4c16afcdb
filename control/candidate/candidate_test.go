package candidate

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func addrs(ss ...string) func() []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return func() []netip.Addr { return out }
}

func dns(m map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, h string) ([]netip.Addr, error) {
		ss, ok := m[h]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func udp(host string, port int) Candidate { return Candidate{Host: host, Port: port, Proto: "udp"} }
func tcp(host string, port int) Candidate { return Candidate{Host: host, Port: port, Proto: "tcp"} }

// srsDefaults are rtc_server's defaults (srs-reference §6.2).
func srsDefaults() Params {
	return Params{
		Candidates:             []string{"*"},
		UseAutoDetectNetworkIP: true,
		IPFamily:               "ipv4",
		APIAsCandidates:        true,
		ResolveAPIDomain:       true,
		Protocol:               "udp",
		UDPPort:                8000,
		TCPPort:                8000,
	}
}

// lan is a host with loopback, link-local and global addresses of both families.
var lan = addrs("127.0.0.1", "192.168.3.6", "::1", "fe80::1", "2001:db8::5", "10.0.0.2")
var names = dns(map[string][]string{
	"example.com":   {"127.0.0.1", "203.0.113.7", "203.0.113.8"},
	"loopback.test": {"127.0.0.1", "::1"},
})

var computeTests = []struct {
	name   string
	params func(*Params)
	req    Request
	ifaces func() []netip.Addr
	want   []Candidate
}{
	{name: "auto ipv4, sorted", ifaces: lan,
		want: []Candidate{udp("10.0.0.2", 8000), udp("192.168.3.6", 8000)}},
	{name: "auto ipv6 skips link-local and loopback", ifaces: lan,
		params: func(p *Params) { p.IPFamily = "ipv6" },
		want:   []Candidate{udp("2001:db8::5", 8000)}},
	{name: "auto all", ifaces: lan, params: func(p *Params) { p.IPFamily = "all" },
		want: []Candidate{udp("10.0.0.2", 8000), udp("192.168.3.6", 8000), udp("2001:db8::5", 8000)}},
	{name: "loopback-only namespace gives 127.0.0.1 (spec curl check)",
		ifaces: addrs("::1", "127.0.0.1"), req: Request{APIHost: "localhost:1985"},
		want: []Candidate{udp("127.0.0.1", 8000)}},
	{name: "ipv6-only interfaces fall back to the first of any family",
		ifaces: addrs("::1", "2001:db8::9"),
		want:   []Candidate{udp("::1", 8000)}},
	{name: "no interfaces", ifaces: addrs(), want: nil},
	{name: "auto detect off falls back to first ipv4", ifaces: lan,
		params: func(p *Params) { p.UseAutoDetectNetworkIP = false },
		want:   []Candidate{udp("127.0.0.1", 8000)}},
	{name: "auto detect off with eip: no fallback", ifaces: lan,
		params: func(p *Params) { p.UseAutoDetectNetworkIP = false },
		req:    Request{EIP: "1.2.3.4"},
		want:   []Candidate{udp("1.2.3.4", 8000)}},
	{name: "eip added to auto", ifaces: lan, req: Request{EIP: "1.2.3.4"},
		want: []Candidate{udp("1.2.3.4", 8000), udp("10.0.0.2", 8000), udp("192.168.3.6", 8000)}},
	{name: "eip with port replaces both ports", ifaces: addrs("127.0.0.1"),
		params: func(p *Params) { p.Protocol = "all"; p.TCPEnabled = true; p.TCPPort = 8001 },
		req:    Request{EIP: "192.168.3.10:18000"},
		want:   []Candidate{udp("192.168.3.10", 18000), tcp("192.168.3.10", 18000)}},
	{name: "eip ipv6 with port", ifaces: addrs("127.0.0.1"), req: Request{EIP: "[2001:DB8::1]:18000"},
		want: []Candidate{udp("2001:db8::1", 18000)}},
	{name: "eip bare ipv6", ifaces: addrs("127.0.0.1"), req: Request{EIP: "2001:db8::1"},
		want: []Candidate{udp("2001:db8::1", 8000)}},
	{name: "eip garbage ignored", ifaces: addrs("127.0.0.1"), req: Request{EIP: "1.2.3.4\r\na=x"},
		want: []Candidate{udp("127.0.0.1", 8000)}},
	{name: "fixed candidate stops the search", ifaces: lan,
		params: func(p *Params) { p.Candidates = []string{"192.168.3.6"} }, req: Request{EIP: "1.2.3.4"},
		want: []Candidate{udp("1.2.3.4", 8000), udp("192.168.3.6", 8000)}},
	{name: "0.0.0.0 is auto", ifaces: addrs("127.0.0.1", "10.1.1.1"),
		params: func(p *Params) { p.Candidates = []string{"0.0.0.0"} },
		want:   []Candidate{udp("10.1.1.1", 8000)}},
	{name: "dual-stack fixed candidates", ifaces: lan,
		params: func(p *Params) { p.Candidates = []string{"192.168.1.100", "[2001:db8::1]"} },
		want:   []Candidate{udp("192.168.1.100", 8000), udp("2001:db8::1", 8000)}},
	{name: "fixed domain candidate", ifaces: lan,
		params: func(p *Params) { p.Candidates = []string{"media.example.org"} },
		want:   []Candidate{udp("media.example.org", 8000)}},
	{name: "api ipv4 literal", ifaces: addrs("127.0.0.1", "10.0.0.2"), req: Request{APIHost: "198.51.100.1:1985"},
		want: []Candidate{udp("10.0.0.2", 8000), udp("198.51.100.1", 8000)}},
	{name: "api ipv6 literal", ifaces: addrs("127.0.0.1"), req: Request{APIHost: "[2001:db8::7]:1985"},
		want: []Candidate{udp("2001:db8::7", 8000)}},
	{name: "api localhost names skipped", ifaces: addrs("127.0.0.1", "10.0.0.2"),
		req:  Request{APIHost: "[::]:1985"},
		want: []Candidate{udp("10.0.0.2", 8000)}},
	{name: "api as candidates off", ifaces: addrs("127.0.0.1", "10.0.0.2"),
		params: func(p *Params) { p.APIAsCandidates = false }, req: Request{APIHost: "198.51.100.1"},
		want: []Candidate{udp("10.0.0.2", 8000)}},
	{name: "api domain resolved, first non-loopback", ifaces: addrs("127.0.0.1", "10.0.0.2"),
		req:  Request{APIHost: "example.com:1985"},
		want: []Candidate{udp("10.0.0.2", 8000), udp("203.0.113.7", 8000)}},
	{name: "api domain kept and resolved", ifaces: addrs("127.0.0.1"),
		params: func(p *Params) { p.KeepAPIDomain = true; p.UseAutoDetectNetworkIP = false },
		req:    Request{APIHost: "example.com"},
		want:   []Candidate{udp("203.0.113.7", 8000), udp("example.com", 8000)}},
	{name: "api domain kept, not resolved", ifaces: addrs("127.0.0.1"),
		params: func(p *Params) { p.KeepAPIDomain = true; p.ResolveAPIDomain = false },
		req:    Request{APIHost: "example.com"},
		want:   []Candidate{udp("example.com", 8000)}},
	{name: "api domain resolving to loopback only", ifaces: addrs("127.0.0.1"),
		req:  Request{APIHost: "loopback.test"},
		want: []Candidate{udp("127.0.0.1", 8000)}},
	{name: "api domain unresolvable", ifaces: addrs("127.0.0.1"),
		req:  Request{APIHost: "nowhere.test"},
		want: []Candidate{udp("127.0.0.1", 8000)}},
	{name: "protocol tcp", ifaces: addrs("127.0.0.1", "10.0.0.2"),
		params: func(p *Params) { p.Protocol = "tcp"; p.TCPEnabled = true; p.TCPPort = 8443 },
		want:   []Candidate{tcp("10.0.0.2", 8443)}},
	{name: "protocol tcp but tcp disabled", ifaces: addrs("10.0.0.2"),
		params: func(p *Params) { p.Protocol = "tcp" }, want: nil},
	{name: "protocol all", ifaces: addrs("10.0.0.2", "10.0.0.3"),
		params: func(p *Params) { p.Protocol = "all"; p.TCPEnabled = true; p.TCPPort = 8001 },
		want: []Candidate{udp("10.0.0.2", 8000), tcp("10.0.0.2", 8001),
			udp("10.0.0.3", 8000), tcp("10.0.0.3", 8001)}},
	{name: "protocol all, tcp disabled", ifaces: addrs("10.0.0.2"),
		params: func(p *Params) { p.Protocol = "all" }, want: []Candidate{udp("10.0.0.2", 8000)}},
	{name: "dedup eip and interface", ifaces: addrs("10.0.0.2"), req: Request{EIP: "10.0.0.2"},
		want: []Candidate{udp("10.0.0.2", 8000)}},
}

func TestCompute(t *testing.T) {
	for _, tt := range computeTests {
		t.Run(tt.name, func(t *testing.T) {
			p := srsDefaults()
			if tt.params != nil {
				tt.params(&p)
			}
			got := Compute(p, tt.req, Env{Interfaces: tt.ifaces, LookupHost: names})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compute = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestComputeNoLookupWithoutResolve(t *testing.T) {
	p := srsDefaults()
	p.ResolveAPIDomain = false
	env := Env{
		Interfaces: addrs("10.0.0.2"),
		LookupHost: func(context.Context, string) ([]netip.Addr, error) {
			t.Fatal("LookupHost called with resolve_api_domain off")
			return nil, nil
		},
	}
	if got := Compute(p, Request{APIHost: "example.com"}, env); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestComputeRealInterfaces(t *testing.T) {
	// The default Env reads the machine's interfaces; every machine has at
	// least a loopback address, so the list is never empty.
	p := srsDefaults()
	p.APIAsCandidates = false
	if got := Compute(p, Request{}, Env{}); len(got) == 0 {
		t.Fatal("no candidate from the real interfaces")
	}
}

func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4:18000", "[::1]:8000", "::1", "example.com:80", "[x]", ":0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		en, ok := parseEntry(s)
		if !ok {
			return
		}
		for i := 0; i < len(en.host); i++ {
			if c := en.host[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("host %q from %q has byte %#x", en.host, s, c)
			}
		}
		if en.port < 0 || en.port > 65535 {
			t.Fatalf("port %d", en.port)
		}
	})
}
