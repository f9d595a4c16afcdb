package xskio_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fanout/fanout/bpf"
	"github.com/fanout/fanout/bpf/netnstest"
	"github.com/fanout/fanout/fastpath/udpio"
	"github.com/fanout/fanout/fastpath/xskio"
)

// TestNetnsTX: a Port over a real AF_XDP socket (bpf.XSK, copy mode on
// veth) in one namespace sends to a UDP socket in the other. The first
// datagram finds no neighbour and takes the kernel socket (a fallback,
// which resolves it); once Hops has read the neighbour table, every
// datagram, GSO runs split, arrives byte-exact through the TX ring, which
// the receiving kernel only accepts with right IPv4 and UDP checksums.
func TestNetnsTX(t *testing.T) {
	netnstest.Require(t)
	srv, cli, srvIP, cliIP := netnstest.Veth(t, "xt", 7)
	var (
		x    *bpf.XSK
		hops *xskio.Hops
		conn *udpio.Conn
		sink *net.UDPConn
	)
	netnstest.Do(t, srv, func() {
		ifc, err := net.InterfaceByName("v" + srv)
		if err != nil {
			t.Fatal(err)
		}
		if x, err = bpf.NewXSK(ifc.Index, 0); err != nil {
			t.Fatal(err)
		}
		if hops, err = xskio.NewHops(ifc.Index); err != nil {
			t.Fatal(err)
		}
		if conn, err = udpio.Listen(udpio.Options{Addr: netip.AddrPortFrom(srvIP, 8600)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { hops.Close(); x.Close(); conn.Close() })
	netnstest.Do(t, cli, func() {
		var err error
		if sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: cliIP.AsSlice(), Port: 40000}); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { sink.Close() })
	_ = sink.SetReadBuffer(4 << 20)
	p := xskio.NewPort(x, hops, 8600, 64, bpf.XSKFrameSize)
	out := udpio.NewOut(256, 256*1280, true)
	var sa udpio.Sockaddr
	dst := netip.AddrPortFrom(cliIP, 40000)
	conn.EncodeAddr(&sa, dst)

	send := func(tag byte, n int) [][]byte {
		var want [][]byte
		for i := range n {
			b := out.Buf()
			size := 1200
			if i%10 == 9 {
				size = 300 + i // ends a GSO run
			}
			for j := range size {
				b[j] = byte(j) ^ byte(i) ^ tag
			}
			b[0], b[1] = tag, byte(i)
			want = append(want, bytes.Clone(b[:size]))
			out.Commit(size, &sa, 1)
		}
		if sent, dropped := p.Flush(out, conn); sent != n || dropped != 0 {
			t.Fatalf("flush: sent %d dropped %d of %d", sent, dropped, n)
		}
		return want
	}
	recv := func(want [][]byte) {
		buf := make([]byte, 2048)
		_ = sink.SetReadDeadline(time.Now().Add(3 * time.Second))
		for i, w := range want {
			n, from, err := sink.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("datagram %d of %d: %v", i, len(want), err)
			}
			if !bytes.Equal(buf[:n], w) || from != netip.AddrPortFrom(srvIP, 8600) {
				t.Fatalf("datagram %d from %v: %d bytes, want %d byte-exact from %v:8600", i, from, n, len(w), srvIP)
			}
		}
	}
	recv(send(1, 1))
	if st := p.Stats(); st.Fallbacks != 1 || st.TxFrames != 0 {
		t.Fatalf("first datagram: %+v, want a socket fallback", st)
	}
	deadline := time.Now().Add(3 * xskio.RefreshInterval)
	for h, ok := hops.Lookup(cliIP); !ok || !h.OK; h, ok = hops.Lookup(cliIP) {
		if time.Now().After(deadline) {
			t.Fatalf("no next hop for %v after %v: %+v (%d netlink errors)", cliIP, 3*xskio.RefreshInterval, h, hops.Errors.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for round := range 5 {
		recv(send(byte(10+round), 100))
	}
	st := p.Stats()
	if st.TxFrames != 500 || st.Fallbacks != 1 || st.TxDropped != 0 || st.Kicks == 0 {
		t.Fatalf("stats %+v: want 500 frames through the TX ring", st)
	}
	t.Logf("%d frames in %d kicks (sendto); hop %+v", st.TxFrames, st.Kicks, must(hops.Lookup(cliIP)))
}

func must(h xskio.Hop, _ bool) xskio.Hop { return h }
