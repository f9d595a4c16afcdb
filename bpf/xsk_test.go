package bpf

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/bpf/netnstest"
)

// TestNetnsXSK: the shield in AF_XDP mode on the server's veth end (native
// XDP) with an AF_XDP socket in copy mode on queue 0. A session's RTP
// arrives byte-exact through the socket's UMEM and RX ring, not the UDP
// socket; its DTLS, and RTP from an address that is no session's with the
// shield's verdicts, do not.
func TestNetnsXSK(t *testing.T) {
	netnstest.Require(t)
	srv, cli, srvIP, cliIP := netnstest.Veth(t, "x", 20)
	const port = 8600
	var sh *Shield
	var xsk *XSK
	var sock int
	netnstest.Do(t, srv, func() {
		var err error
		sh, err = AttachShield(ShieldConfig{Interfaces: []string{"v" + srv}, Port: port, AFXDP: true})
		if err != nil {
			t.Fatal(err)
		}
		ifc, err := net.InterfaceByName("v" + srv)
		if err != nil {
			t.Fatal(err)
		}
		if xsk, err = NewXSK(ifc.Index, 0); err != nil {
			t.Fatal(err)
		}
		if err := sh.AttachXSK(0, xsk); err != nil {
			t.Fatal(err)
		}
		sock = udpOn(t, netip.AddrPortFrom(srvIP, port))
	})
	t.Cleanup(func() { xsk.Close(); sh.Close() })
	if m := sh.Modes(); m[0] != "native" {
		t.Logf("XDP mode %s", m[0])
	}
	var peer, stranger int
	netnstest.Do(t, cli, func() {
		peer = udpOn(t, netip.AddrPortFrom(cliIP, 0))
		stranger = udpOn(t, netip.AddrPortFrom(cliIP, 0))
	})
	peerAddr := localAddr(t, peer)
	sh.Add(peerAddr)
	to := &unix.SockaddrInet4{Port: port, Addr: srvIP.As4()}

	const n = 200
	sent := map[uint16][]byte{}
	for i := range uint16(n) {
		pkt := make([]byte, 12+100+int(i)%900)
		pkt[0], pkt[1] = 0x80, 96
		binary.BigEndian.PutUint16(pkt[2:], i)
		for j := 12; j < len(pkt); j++ {
			pkt[j] = byte(int(i) + j)
		}
		sent[i] = pkt
		if err := unix.Sendto(peer, pkt, 0, to); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // the RX ring is 2048 deep; no need to race it
		}
	}
	dtls := append([]byte{22, 0xfe, 0xfd}, make([]byte, 40)...)
	if err := unix.Sendto(peer, dtls, 0, to); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(stranger, sent[0], 0, to); err != nil {
		t.Fatal(err)
	}

	got := receiveXSK(t, xsk, n, peerAddr, netip.AddrPortFrom(srvIP, port))
	for seq, want := range sent {
		if !bytes.Equal(got[seq], want) {
			t.Fatalf("RTP %d: got %d bytes through the XSK, want %d byte-exact", seq, len(got[seq]), len(want))
		}
	}
	buf := make([]byte, 2048)
	nr, _, err := unix.Recvfrom(sock, buf, 0)
	if err != nil || !bytes.Equal(buf[:nr], dtls) {
		t.Fatalf("the UDP socket got %d bytes (%v), want the DTLS record", nr, err)
	}
	if nr, _, err := unix.Recvfrom(sock, buf, unix.MSG_DONTWAIT); err == nil {
		t.Fatalf("the UDP socket also got %d bytes", nr)
	}
	// The receive path allocates nothing: 64 more through Wait, Receive, Refill.
	for i := range uint16(64) {
		if err := unix.Sendto(peer, sent[i], 0, to); err != nil {
			t.Fatal(err)
		}
	}
	descs, left := make([]unix.XDPDesc, 8), 64
	allocs := testing.AllocsPerRun(20, func() {
		if left > 0 {
			_ = xsk.Wait(100)
		}
		k := xsk.Receive(descs)
		xsk.Refill(descs[:k])
		left -= k
	})
	if allocs != 0 || left != 0 {
		t.Errorf("%.1f allocations per receive round; %d frames not received", allocs, left)
	}
	c := sh.Counters()
	if c[VerdictRedirectXSK] != n+64 || c[VerdictPassSession] != 1 || c[VerdictDropUnknown] != 1 {
		t.Fatalf("verdicts %v: want %d redirected, the DTLS passed, the stranger dropped", c, n+64)
	}
}

// receiveXSK reads n frames from x, checks their addresses, and returns
// their UDP payloads by RTP sequence number.
func receiveXSK(t *testing.T, x *XSK, n int, from, to netip.AddrPort) map[uint16][]byte {
	t.Helper()
	got := map[uint16][]byte{}
	descs := make([]unix.XDPDesc, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		if err := x.Wait(100); err != nil {
			t.Fatal(err)
		}
		k := x.Receive(descs)
		for _, d := range descs[:k] {
			f := x.Frame(d)
			if len(f) < 14+20+8+12 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
				t.Fatalf("frame of %d bytes, not IPv4 UDP", len(f))
			}
			ip := f[14:]
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(ip[20:]))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(ip[22:]))
			if src != from || dst != to {
				t.Fatalf("frame %v → %v, want %v → %v", src, dst, from, to)
			}
			payload := ip[28:]
			got[binary.BigEndian.Uint16(payload[2:])] = bytes.Clone(payload)
		}
		x.Refill(descs[:k])
	}
	if len(got) != n {
		t.Fatalf("%d of %d frames through the XSK", len(got), n)
	}
	return got
}

func udpOn(t *testing.T, a netip.AddrPort) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func localAddr(t *testing.T, fd int) netip.AddrPort {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	s := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
}
