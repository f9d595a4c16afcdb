package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
)

const (
	xdpDrop = 1
	xdpPass = 2
)

// frame builds an Ethernet frame carrying proto (17 UDP, 6 TCP) from src
// to dst with payload after an 8-byte UDP (or TCP-sized) header.
func frame(src, dst netip.AddrPort, proto byte, payload []byte) []byte {
	b := make([]byte, 12, 128)
	l4 := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	binary.BigEndian.PutUint16(l4[4:], uint16(8+len(payload)))
	l4 = append(l4, payload...)
	if src.Addr().Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		ip[8], ip[9] = 64, proto
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		b = append(b, ip...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = proto, 64
		s, d := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
	}
	return append(b, l4...)
}

func loadTestShield(t *testing.T, rate float64, burst int) *Shield {
	t.Helper()
	needBPF(t)
	s, err := newShield(ShieldConfig{Interfaces: []string{"lo"}, Port: 8000, STUNRate: rate, STUNBurst: burst})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func run(t *testing.T, s *Shield, pkt []byte) uint32 {
	t.Helper()
	ret, err := s.objs.FanoutShield.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

func TestShieldVerdicts(t *testing.T) {
	s := loadTestShield(t, 1, 2)
	ap := netip.MustParseAddrPort
	srv4, srv6 := ap("10.0.0.1:8000"), ap("[fd00::1]:8000")
	peer4, peer6 := ap("10.0.0.2:40000"), ap("[fd00::2]:40000")
	s.Add(peer4)
	s.Add(netip.AddrPortFrom(netip.AddrFrom16(peer6.Addr().As16()), peer6.Port()))
	s.Add(ap("[::ffff:10.0.0.3]:5000")) // a mapped address names the IPv4 peer
	rtp := []byte{0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	garbage := make([]byte, 40)
	stun := stunRequest("aa01:client", false)
	notBinding := append([]byte(nil), stun...)
	notBinding[1] = 0x11 // a Binding Indication is no request
	noCookie := append([]byte(nil), stun...)
	noCookie[4] = 0
	tests := []struct {
		name     string
		pkt      []byte
		want     uint32
		verdicts [NumVerdicts]uint64
	}{
		{"session v4", frame(peer4, srv4, 17, rtp), xdpPass, [NumVerdicts]uint64{VerdictPassSession: 1}},
		{"session v6", frame(peer6, srv6, 17, rtp), xdpPass, [NumVerdicts]uint64{VerdictPassSession: 1}},
		{"session mapped", frame(ap("10.0.0.3:5000"), srv4, 17, rtp), xdpPass, [NumVerdicts]uint64{VerdictPassSession: 1}},
		{"unknown port v4", frame(ap("10.0.0.2:40001"), srv4, 17, rtp), xdpDrop, [NumVerdicts]uint64{VerdictDropUnknown: 1}},
		{"unknown v6", frame(ap("[fd00::9]:40000"), srv6, 17, garbage), xdpDrop, [NumVerdicts]uint64{VerdictDropUnknown: 1}},
		{"short", frame(ap("10.0.0.9:1"), srv4, 17, nil), xdpDrop, [NumVerdicts]uint64{VerdictDropUnknown: 1}},
		{"indication", frame(ap("10.0.0.9:1"), srv4, 17, notBinding), xdpDrop, [NumVerdicts]uint64{VerdictDropUnknown: 1}},
		{"no cookie", frame(ap("10.0.0.9:1"), srv4, 17, noCookie), xdpDrop, [NumVerdicts]uint64{VerdictDropUnknown: 1}},
		{"stun v4", frame(ap("10.0.0.9:1"), srv4, 17, stun), xdpPass, [NumVerdicts]uint64{VerdictPassSTUN: 1}},
		{"stun v6", frame(ap("[fd00::9]:1"), srv6, 17, stun), xdpPass, [NumVerdicts]uint64{VerdictPassSTUN: 1}},
		{"other port", frame(ap("10.0.0.9:1"), ap("10.0.0.1:8001"), 17, garbage), xdpPass, [NumVerdicts]uint64{VerdictPassOther: 1}},
		{"other port v6", frame(ap("[fd00::9]:1"), ap("[fd00::1]:53"), 17, garbage), xdpPass, [NumVerdicts]uint64{VerdictPassOther: 1}},
		{"tcp", frame(ap("10.0.0.9:1"), srv4, 6, garbage), xdpPass, [NumVerdicts]uint64{VerdictPassOther: 1}},
		{"tcp v6", frame(ap("[fd00::9]:1"), srv6, 6, garbage), xdpPass, [NumVerdicts]uint64{VerdictPassOther: 1}},
		{"arp", append(make([]byte, 12), 0x08, 0x06, 0, 1), xdpPass, [NumVerdicts]uint64{VerdictPassOther: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Counters()
			if got := run(t, s, tc.pkt); got != tc.want {
				t.Fatalf("verdict %d, want %d", got, tc.want)
			}
			after := s.Counters()
			for i := range after {
				if after[i]-before[i] != tc.verdicts[i] {
					t.Errorf("counter %s moved by %d, want %d", VerdictNames[i], after[i]-before[i], tc.verdicts[i])
				}
			}
		})
	}
}

func TestShieldRemove(t *testing.T) {
	s := loadTestShield(t, 1, 2)
	peer, srv := netip.MustParseAddrPort("10.0.0.2:40000"), netip.MustParseAddrPort("10.0.0.1:8000")
	pkt := frame(peer, srv, 17, make([]byte, 20))
	s.Add(peer)
	if got := run(t, s, pkt); got != xdpPass {
		t.Fatalf("after Add: %d, want pass", got)
	}
	s.Remove(peer)
	s.Remove(peer) // twice: not an error
	if got := run(t, s, pkt); got != xdpDrop {
		t.Fatalf("after Remove: %d, want drop", got)
	}
	if n := s.PeerErrors(); n != 0 {
		t.Fatalf("%d peer errors", n)
	}
}

// TestShieldAFXDPFallback: in AF_XDP mode, a queue without a socket
// leaves sessions' media with the kernel.
func TestShieldAFXDPFallback(t *testing.T) {
	needBPF(t)
	s, err := newShield(ShieldConfig{Interfaces: []string{"lo"}, Port: 8000, AFXDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peer, srv := netip.MustParseAddrPort("10.0.0.2:40000"), netip.MustParseAddrPort("10.0.0.1:8000")
	s.Add(peer)
	if got := run(t, s, frame(peer, srv, 17, []byte{0x80, 96, 0, 1})); got != xdpPass {
		t.Fatalf("RTP with no socket on the queue: %d, want pass", got)
	}
	if c := s.Counters(); c[VerdictPassSession] != 1 || c[VerdictRedirectXSK] != 0 {
		t.Fatalf("verdicts %v", c)
	}
}

// TestShieldRateLimit: a source gets its burst of STUN requests at once,
// then one per 1/rate; another source has its own bucket.
func TestShieldRateLimit(t *testing.T) {
	s := loadTestShield(t, 1, 3) // 1/s: nothing refills during the test
	srv := netip.MustParseAddrPort("10.0.0.1:8000")
	stun := stunRequest("aa01:client", false)
	var pass int
	for port := range uint16(10) { // new ports: the bucket is per source IP
		if run(t, s, frame(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.7"), 1000+port), srv, 17, stun)) == xdpPass {
			pass++
		}
	}
	if pass != 3 {
		t.Fatalf("%d of 10 passed, want the burst of 3", pass)
	}
	if run(t, s, frame(netip.MustParseAddrPort("10.0.0.8:1000"), srv, 17, stun)) != xdpPass {
		t.Fatal("another source was limited")
	}
	if run(t, s, frame(netip.MustParseAddrPort("[fd00::7]:1000"), srv, 17, stun)) != xdpPass {
		t.Fatal("an IPv6 source was limited")
	}
	c := s.Counters()
	if c[VerdictDropRate] != 7 || c[VerdictPassSTUN] != 5 {
		t.Fatalf("counters %v, want 7 rate-limited and 5 STUN passed", c)
	}
}
