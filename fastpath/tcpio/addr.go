package tcpio

import (
	"net"
	"net/netip"
)

// addrPortOf converts a connection's net.Addr without going through strings.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort(), true
	}
	return netip.AddrPort{}, false
}
