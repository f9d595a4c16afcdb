package route

import "net/netip"

// WebRTC over TCP (RFC 6544, RFC 4571) reaches the fastpath through package
// fastpath/tcpio. A TCP peer has a pseudo-address: its remote address as
// IPv6 (v4-mapped when needed) with the zone "tcp", so route tables,
// upcalls and control treat it like any other peer and it can never equal a
// UDP peer's address.

// TCPZone marks a TCP peer's pseudo-address.
const TCPZone = "tcp"

// TCPPeer is the pseudo-address of the TCP peer at remote. A zone on remote
// (IPv6 link-local) is replaced.
func TCPPeer(remote netip.AddrPort) netip.AddrPort {
	a := netip.AddrFrom16(remote.Addr().As16()).WithZone(TCPZone)
	return netip.AddrPortFrom(a, remote.Port())
}

// IsTCPPeer reports whether a is a TCP peer's pseudo-address.
func IsTCPPeer(a netip.AddrPort) bool { return a.Addr().Zone() == TCPZone }
