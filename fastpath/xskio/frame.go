// Package xskio is the fastpath's AF_XDP I/O, the kernel-bypass sibling of
// fastpath/udpio (`fastpath { xdp IFACE; xdp_mode afxdp; }`, issue 16): a
// core that owns an AF_XDP socket reads its sessions' RTP and RTCP as
// Ethernet frames from the socket's RX ring (Port.Recv, Port.Datagram, the
// same payload-and-source pair a udpio.Batch gives) and sends its egress
// batch (a udpio.Out, built exactly as for sendmmsg) as frames on the TX
// ring (Port.Flush), writing the Ethernet, IPv4 or IPv6 and UDP headers
// itself, UDP checksum included (software: copy mode has no offload).
//
// The next hop of a destination (source address, the interface's MAC, the
// neighbour's MAC) comes from the kernel's route and neighbour tables over
// rtnetlink (Hops), read with golang.org/x/sys/unix and the standard
// library's netlink message parser: two request types (RTM_GETROUTE for one
// address, an RTM_GETNEIGH dump) do not justify a dependency, and
// vishvananda/netlink, the usual library, would pull in its own netns
// package and allocate per call for no gain here. A destination the kernel
// routes out of another interface, or whose neighbour is not resolved yet,
// goes out through the socket for that datagram (counted as a fallback);
// the kernel's own send then resolves it, and the next refresh sees it.
//
// The rings are not here: package bpf owns them (bpf.XSK implements
// Socket), since the shield's XSKMAP must name them and the fastpath may
// not import bpf. Who imports xskio: package fastpath (a core's Port) and
// cmd (NewHops, NewPort).
//
// Concurrency: a Port belongs to its core's goroutine; its Stats may be
// read from any. Hops is shared: Lookup from any core, never blocking; one
// goroutine of its own talks to the kernel. Nothing per packet allocates.
package xskio

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Header sizes.
const (
	ethLen  = 14
	ip4Len  = 20
	ip6Len  = 40
	udpLen  = 8
	etherV4 = 0x0800
	etherV6 = 0x86DD
	protUDP = 17
)

// parseUDP returns the UDP payload of an Ethernet frame carrying IPv4 or
// IPv6 UDP and its source, or ok false for anything else or a truncated
// or inconsistent frame (IPv6 extension headers are not walked: the shield
// never redirects them).
func parseUDP(f []byte) (payload []byte, from netip.AddrPort, ok bool) {
	if len(f) < ethLen+ip4Len+udpLen {
		return nil, netip.AddrPort{}, false
	}
	var src netip.Addr
	var udp []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case etherV4:
		ip := f[ethLen:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if ip[0]>>4 != 4 || ihl < ip4Len || ip[9] != protUDP || total < ihl+udpLen || total > len(ip) ||
			binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // a fragment
			return nil, netip.AddrPort{}, false
		}
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		udp = ip[ihl:total]
	case etherV6:
		ip := f[ethLen:]
		if len(ip) < ip6Len+udpLen || ip[0]>>4 != 6 || ip[6] != protUDP {
			return nil, netip.AddrPort{}, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if plen < udpLen || ip6Len+plen > len(ip) {
			return nil, netip.AddrPort{}, false
		}
		src = netip.AddrFrom16([16]byte(ip[8:24])).Unmap()
		udp = ip[ip6Len : ip6Len+plen]
	default:
		return nil, netip.AddrPort{}, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < udpLen || ulen > len(udp) {
		return nil, netip.AddrPort{}, false
	}
	return udp[udpLen:ulen], netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp)), true
}

// headerLen is the Ethernet, IP and UDP header bytes before a payload to dst.
func headerLen(dst netip.Addr) int {
	if dst.Is4() {
		return ethLen + ip4Len + udpLen
	}
	return ethLen + ip6Len + udpLen
}

// writeHeaders writes the Ethernet, IP and UDP headers for the payload
// that follows them in f (f[headerLen(dst):]) from h.Src:srcPort to dst,
// with the IPv4 header checksum and the UDP checksum.
func writeHeaders(f []byte, h *Hop, srcPort uint16, dst netip.AddrPort) {
	copy(f[0:6], h.DstMAC[:])
	copy(f[6:12], h.SrcMAC[:])
	var sum uint64
	var udp []byte
	if dst.Addr().Is4() {
		binary.BigEndian.PutUint16(f[12:], etherV4)
		ip := f[ethLen:]
		total := len(ip)
		ip[0], ip[1] = 0x45, 0
		binary.BigEndian.PutUint16(ip[2:], uint16(total))
		binary.BigEndian.PutUint32(ip[4:], 0x00004000) // ID 0, DF (RFC 6864 §4.1)
		ip[8], ip[9] = 64, protUDP
		ip[10], ip[11] = 0, 0
		s, d := h.Src.As4(), dst.Addr().As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(checksum(0, ip[:ip4Len])))
		udp = ip[ip4Len:]
		sum = uint64(fold(checksum(0, ip[12:20]))) + protUDP + uint64(len(udp))
	} else {
		binary.BigEndian.PutUint16(f[12:], etherV6)
		ip := f[ethLen:]
		binary.BigEndian.PutUint32(ip[0:], 6<<28)
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-ip6Len))
		ip[6], ip[7] = protUDP, 64
		s, d := h.Src.As16(), dst.Addr().As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		udp = ip[ip6Len:]
		sum = uint64(fold(checksum(0, ip[8:40]))) + protUDP + uint64(len(udp))
	}
	binary.BigEndian.PutUint16(udp[0:], srcPort)
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	udp[6], udp[7] = 0, 0
	c := ^fold(checksum(sum, udp))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:], c)
}

// checksum adds b to the one's-complement sum acc (RFC 1071) as
// big-endian 64-bit words with end-around carry; fold reduces it to 16
// bits.
func checksum(acc uint64, b []byte) uint64 {
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry
	var tail uint64
	for i, v := range b { // up to 7 bytes, as the high bytes of a word
		tail |= uint64(v) << (56 - 8*uint(i))
	}
	acc, carry = bits.Add64(acc, tail, 0)
	return acc + carry
}

func fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}
