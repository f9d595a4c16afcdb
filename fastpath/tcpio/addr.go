package tcpio

import (
	"net"
	"net/netip"
)

// zone marks a pseudo-address as a TCP peer.
const zone = "tcp"

// PeerAddr is the pseudo-address a TCP peer has inside Fanout: remote as IPv6
// (v4-mapped when needed) with zone "tcp", so it never equals a UDP peer's
// netip.AddrPort in route tables. A zone on remote (IPv6 link-local) is replaced.
func PeerAddr(remote netip.AddrPort) netip.AddrPort {
	a := netip.AddrFrom16(remote.Addr().As16()).WithZone(zone)
	return netip.AddrPortFrom(a, remote.Port())
}

// IsTCP reports whether a is a pseudo-address made by PeerAddr.
func IsTCP(a netip.AddrPort) bool {
	return a.Addr().Zone() == zone
}

// RemoteOf is the real remote address behind a pseudo-address (IPv4 unmapped),
// for logs and the API. Other addresses are returned unchanged.
func RemoteOf(peer netip.AddrPort) netip.AddrPort {
	if !IsTCP(peer) {
		return peer
	}
	return netip.AddrPortFrom(peer.Addr().WithZone("").Unmap(), peer.Port())
}

// addrPortOf converts a connection's net.Addr without going through strings.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), true
	}
	return netip.AddrPort{}, false
}
