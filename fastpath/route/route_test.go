package route

import (
	"net/netip"
	"testing"
)

func TestUfragCore(t *testing.T) {
	for core := range MaxUfragCore + 1 {
		u := UfragForCore(core, "abcdefgh")
		if got := CoreOfUfrag(u); got != core || len(u) != 10 {
			t.Fatalf("core %d: ufrag %q decodes to %d", core, u, got)
		}
	}
	for _, tc := range []struct {
		name  string
		core  int
		ufrag string
	}{
		{"negative core written as 0", -1, "00ab"},
		{"core past two hex digits written as 0", MaxUfragCore + 1, "00ab"},
		{"largest core", MaxUfragCore, "ffab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UfragForCore(tc.core, "ab"); got != tc.ufrag {
				t.Errorf("UfragForCore(%d) = %q, want %q", tc.core, got, tc.ufrag)
			}
		})
	}
	for _, u := range []string{"", "0", "0a", "Zzabcd", "g0abcd", "A0abcd", "0Aabcd", ":0abcd"} {
		t.Run("reject "+u, func(t *testing.T) {
			if got := CoreOfUfrag(u); got != -1 {
				t.Errorf("%q decodes to %d, want -1", u, got)
			}
		})
	}
	// Three characters are enough: a client-chosen ufrag may be that short.
	if got := CoreOfUfrag("0a:"); got != 10 {
		t.Errorf(`"0a:" decodes to %d, want 10`, got)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = CoreOfUfrag("1fabcdefgh") }); allocs != 0 {
		t.Errorf("CoreOfUfrag allocates %v per call", allocs)
	}
}

func TestTCPPeer(t *testing.T) {
	for _, tc := range []struct{ name, remote string }{
		{"ipv4", "192.0.2.7:40000"},
		{"ipv6", "[2001:db8::1]:9"},
		{"v4-mapped", "[::ffff:192.0.2.7]:40000"},
		{"ipv6 link-local zone replaced", "[fe80::1%eth0]:5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := netip.MustParseAddrPort(tc.remote)
			p := TCPPeer(remote)
			if !IsTCPPeer(p) || IsTCPPeer(remote) {
				t.Fatalf("IsTCPPeer(%v)=%v IsTCPPeer(%v)=%v", p, IsTCPPeer(p), remote, IsTCPPeer(remote))
			}
			plain := netip.AddrPortFrom(remote.Addr().WithZone("").Unmap(), remote.Port())
			if p == remote || p == plain {
				t.Fatalf("pseudo-address %v equals a UDP address", p)
			}
			// Round trip: the zone off and the v4 mapping undone give the remote back.
			if back := netip.AddrPortFrom(p.Addr().WithZone("").Unmap(), p.Port()); back != plain {
				t.Fatalf("%v back to %v, want %v", p, back, plain)
			}
			if TCPPeer(p) != p {
				t.Fatalf("TCPPeer is not idempotent: %v → %v", p, TCPPeer(p))
			}
		})
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = IsTCPPeer(TCPPeer(netip.MustParseAddrPort("192.0.2.7:1"))) }); allocs != 0 {
		t.Errorf("TCPPeer/IsTCPPeer allocate %v per call", allocs)
	}
}

func TestTable(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.1:5000")
	b := netip.MustParseAddrPort("[2001:db8::2]:6000")
	tcp := TCPPeer(a)
	bl := NewBuilder(7, 4, 2)
	bl.AddSession(Session{ID: 1, Epoch: 3, Role: RolePublisher, Stream: 1, Peer: a}, a, b)
	bl.AddSession(Session{ID: 3, Role: RolePlayer, Stream: 1, Keys: &Keys{}}, tcp)
	bl.AddStream(Stream{ID: 1, Publisher: 1, Players: []SessionID{3}})
	tbl := bl.Table()

	if tbl.Version != 7 || len(tbl.Sessions) != 5 || len(tbl.Streams) != 3 {
		t.Fatalf("table version %d, %d session slots, %d stream slots", tbl.Version, len(tbl.Sessions), len(tbl.Streams))
	}
	for _, tc := range []struct {
		name string
		addr netip.AddrPort
		want SessionID // 0: no session
	}{
		{"first address", a, 1},
		{"second address of the same session", b, 1},
		{"tcp pseudo-address of a's ip:port is another peer", tcp, 3},
		{"unknown port", netip.MustParseAddrPort("192.0.2.1:5001"), 0},
		{"zero address", netip.AddrPort{}, 0},
	} {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			s := tbl.Lookup(tc.addr)
			switch {
			case tc.want == 0 && s != nil:
				t.Errorf("Lookup(%v) = session %d, want none", tc.addr, s.ID)
			case tc.want != 0 && (s == nil || s.ID != tc.want):
				t.Errorf("Lookup(%v) = %v, want session %d", tc.addr, s, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		id    SessionID
		found bool
	}{{0, false}, {1, true}, {2, false}, {3, true}, {4, false}, {5, false}, {1 << 20, false}} {
		if got := tbl.Session(tc.id); (got != nil) != tc.found || (got != nil && got.ID != tc.id) {
			t.Errorf("Session(%d) = %v, found %v", tc.id, got, tc.found)
		}
	}
	for _, tc := range []struct {
		id    StreamID
		found bool
	}{{0, false}, {1, true}, {2, false}, {3, false}} {
		if got := tbl.Stream(tc.id); (got != nil) != tc.found {
			t.Errorf("Stream(%d) = %v, found %v", tc.id, got, tc.found)
		}
	}
	if pub, pl := tbl.Session(1), tbl.Session(3); pub.Ready() || !pl.Ready() || pub.Epoch != 3 {
		t.Errorf("Ready: publisher without keys %v, player with keys %v", pub.Ready(), pl.Ready())
	}
	if v := (&Session{ID: 2, Virtual: true}); !v.Ready() {
		t.Error("a virtual publisher is ready without keys")
	}
	if (&Session{Keys: &Keys{}}).Ready() {
		t.Error("slot 0 (no session) is ready")
	}
	if Empty.Lookup(a) != nil || Empty.Session(1) != nil || Empty.Stream(1) != nil {
		t.Error("the empty table finds something")
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = tbl.Lookup(b) }); allocs != 0 {
		t.Errorf("Lookup allocates %v per call", allocs)
	}
}
