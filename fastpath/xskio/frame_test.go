package xskio

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refSum is RFC 1071's one's-complement sum, 16 bits at a time.
func refSum(bs ...[]byte) uint16 {
	var s uint32
	for _, b := range bs {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestChecksumMatchesRFC1071(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := fold(checksum(0, b)), refSum(b); got != want {
			t.Fatalf("%d bytes: sum %#04x, RFC 1071 gives %#04x", n, got, want)
		}
	}
	ones := bytes.Repeat([]byte{0xff}, 1500)
	if got, want := fold(checksum(0, ones)), refSum(ones); got != want {
		t.Fatalf("all ones: %#04x, want %#04x", got, want)
	}
}

// TestHeadersRoundTrip: frames built for IPv4 and IPv6 parse back to the
// payload and source, and their IPv4 header and UDP checksums verify the
// way a receiver checks them (the sum over the covered bytes is 0xffff).
func TestHeadersRoundTrip(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{{"10.0.0.1", "10.0.0.2"}, {"fd00::1", "fd00::2"}} {
		hop := Hop{Src: netip.MustParseAddr(tc.src), SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2}, OK: true}
		dst := netip.AddrPortFrom(netip.MustParseAddr(tc.dst), 50000)
		for _, n := range []int{1, 2, 13, 1200} {
			payload := make([]byte, n)
			for i := range payload {
				payload[i] = byte(i*7 + n)
			}
			hl := headerLen(dst.Addr())
			f := make([]byte, hl+n)
			copy(f[hl:], payload)
			writeHeaders(f, &hop, 8000, dst)
			if !bytes.Equal(f[0:6], hop.DstMAC[:]) || !bytes.Equal(f[6:12], hop.SrcMAC[:]) {
				t.Fatalf("MACs %x", f[:12])
			}
			// Swap the roles to parse it as the receiver would see its source.
			got, from, ok := parseUDP(f)
			if !ok || !bytes.Equal(got, payload) || from != netip.AddrPortFrom(hop.Src, 8000) {
				t.Fatalf("%s %d bytes: parsed %v %v %d bytes", tc.dst, n, ok, from, len(got))
			}
			ip := f[ethLen:]
			var pseudo []byte
			var udp []byte
			if dst.Addr().Is4() {
				if refSum(ip[:ip4Len]) != 0xffff {
					t.Fatalf("IPv4 header checksum does not verify")
				}
				udp = ip[ip4Len:]
				pseudo = append(append([]byte{}, ip[12:20]...), 0, protUDP, byte(len(udp)>>8), byte(len(udp)))
			} else {
				udp = ip[ip6Len:]
				pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, protUDP)
			}
			if refSum(pseudo, udp) != 0xffff || binary.BigEndian.Uint16(udp[6:]) == 0 {
				t.Fatalf("%s %d bytes: UDP checksum %#04x does not verify", tc.dst, n, binary.BigEndian.Uint16(udp[6:]))
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	hop := Hop{Src: netip.MustParseAddr("10.0.0.1"), OK: true}
	dst := netip.MustParseAddrPort("10.0.0.2:9")
	f := make([]byte, headerLen(dst.Addr())+20)
	writeHeaders(f, &hop, 8000, dst)
	for name, mut := range map[string]func([]byte) []byte{
		"truncated":  func(b []byte) []byte { return b[:30] },
		"arp":        func(b []byte) []byte { b[12], b[13] = 0x08, 0x06; return b },
		"tcp":        func(b []byte) []byte { b[ethLen+9] = 6; return b },
		"fragment":   func(b []byte) []byte { b[ethLen+7] = 1; return b },
		"ip too big": func(b []byte) []byte { b[ethLen+2] = 0xff; return b },
		"udp len":    func(b []byte) []byte { b[ethLen+ip4Len+4] = 0xff; return b },
	} {
		if _, _, ok := parseUDP(mut(bytes.Clone(f))); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}
