package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// testSink loads the sink filter or skips the test with the reason.
func testSink(t *testing.T) *sink {
	t.Helper()
	s, err := newSink()
	if errors.Is(err, ErrSinkPermission) {
		t.Skipf("needs CAP_BPF: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

var sinkFamilies = []struct {
	name string
	addr netip.Addr
}{{"udp4", netip.MustParseAddr("127.0.0.1")}, {"udp6", netip.MustParseAddr("::1")}}

// sinkPair opens a receiving socket on addr and an unconnected sender of the
// same family, and returns them with the receiver's address.
func sinkPair(t *testing.T, addr netip.Addr) (rx, tx int, dst unix.Sockaddr) {
	t.Helper()
	rx, port, err := udpSocket(addr, 1<<20)
	if err != nil {
		t.Skipf("no %v loopback: %v", addr, err)
	}
	t.Cleanup(func() { unix.Close(rx) })
	fam := unix.AF_INET
	if addr.Is6() {
		fam = unix.AF_INET6
	}
	tx, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(tx) })
	return rx, tx, sockaddr(netip.AddrPortFrom(addr, port))
}

// TestSinkFilterPayloadOffset works out where a socket filter on a UDP
// socket sees the payload: a probe filter copies the first 32 bytes it sees
// into a map, and the test looks for the datagram's payload in them.
func TestSinkFilterPayloadOffset(t *testing.T) {
	testSink(t) // privilege probe
	const capture = 32
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: capture, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R2, 0),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -capture),
			asm.Mov.Imm(asm.R4, capture),
			asm.FnSkbLoadBytes.Call(), // bpf_skb_load_bytes(skb, 0, fp-32, 32)
			asm.JNE.Imm(asm.R0, 0, "out"),
			asm.StoreImm(asm.RFP, -capture-4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -capture-4),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -capture),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnMapUpdateElem.Call(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	payload := []byte("FANOUT-SINK-PAYLOAD-OFFSET")
	for _, fam := range sinkFamilies {
		t.Run(fam.name, func(t *testing.T) {
			rx, tx, dst := sinkPair(t, fam.addr)
			if err := unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, prog.FD()); err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(tx, payload, 0, dst); err != nil {
				t.Fatal(err)
			}
			var seen [capture]byte
			if err := m.Lookup(uint32(0), &seen); err != nil {
				t.Fatal(err)
			}
			off := bytes.Index(seen[:], payload[:capture-udpHeaderLen])
			if off != udpHeaderLen {
				t.Fatalf("payload at offset %d of % x, want %d", off, seen, udpHeaderLen)
			}
			// What precedes it is the UDP header (RFC 768): destination port, length.
			port := binary.BigEndian.Uint16(seen[2:])
			if want := portOf(dst); port != want || binary.BigEndian.Uint16(seen[4:]) != uint16(udpHeaderLen+len(payload)) {
				t.Fatalf("header % x: port %d (want %d), length %d", seen[:8], port, want, binary.BigEndian.Uint16(seen[4:]))
			}
		})
	}
}

func portOf(sa unix.Sockaddr) uint16 {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(a.Port)
	case *unix.SockaddrInet6:
		return uint16(a.Port)
	}
	return 0
}

// TestSinkFilterCounts sends known numbers of RTP, RTCP, STUN, DTLS and
// other datagrams to a sink socket and checks the counters, and that nothing
// was queued on the socket.
func TestSinkFilterCounts(t *testing.T) {
	sk := testSink(t)
	rtpPkt := rtpPlain(7, make([]byte, 188)) // 200 bytes
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	rtcpRR := []byte{0x81, 201, 0, 1, 0, 0, 0, 1}
	stunReq, err := bindingRequest("a", "b", "password")
	if err != nil {
		t.Fatal(err)
	}
	dtlsRec := []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	marker := rtpPlain(8, make([]byte, 50))
	marker[1] = 0x80 | 102 // marker bit set: still media (second byte 230)
	cases := []struct {
		name string
		pkt  []byte
		n    int
		cl   int
	}{
		{"rtp", rtpPkt, 1000, sinkMedia},
		{"rtp-marker", marker, 10, sinkMedia},
		{"rtcp-sr", rtcp, 100, sinkRTCP},
		{"rtcp-rr", rtcpRR, 7, sinkRTCP},
		{"stun", stunReq, 30, sinkSTUN},
		{"dtls", dtlsRec, 5, sinkDTLS},
		{"short-rtp", []byte{0x80, 102, 0, 1}, 3, sinkOther},
		{"one-byte", []byte{0x80}, 2, sinkOther},
		{"empty", nil, 2, sinkOther},
		{"turn-channel", []byte{0x40, 0, 0, 4, 1, 2, 3, 4}, 4, sinkOther},
	}
	for _, fam := range sinkFamilies {
		t.Run(fam.name, func(t *testing.T) {
			rx, tx, dst := sinkPair(t, fam.addr)
			if err := sk.attach(rx); err != nil {
				t.Fatal(err)
			}
			before, err := sk.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			var want sinkCounts
			for _, c := range cases {
				for range c.n {
					if err := unix.Sendto(tx, c.pkt, 0, dst); err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
				}
				want[c.cl].Packets += uint64(c.n)
				if len(c.pkt) >= 2 {
					want[c.cl].Bytes += uint64(c.n * len(c.pkt))
				}
			}
			// UDP GSO (as Fanout sends): the filter sees each segment.
			gso := bytes.Repeat(rtpPlain(9, make([]byte, 1188)), 4)
			oob := udpSegmentCmsg(1200)
			if _, err := unix.SendmsgN(tx, gso, oob, dst, 0); err == nil {
				want[sinkMedia].Packets += 4
				want[sinkMedia].Bytes += 4 * 1200
			} else {
				t.Logf("no UDP GSO send: %v", err)
			}
			after, err := sk.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if got := after.sub(before); got != want {
				t.Fatalf("counted %+v, want %+v", got, want)
			}
			buf := make([]byte, 2048)
			if n, _, err := unix.Recvfrom(rx, buf, unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("sink socket had a datagram queued: n=%d err=%v", n, err)
			}
		})
	}
}

// udpSegmentCmsg is the UDP_SEGMENT control message of a GSO send (udp(7)).
func udpSegmentCmsg(size uint16) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], size)
	return b
}

// TestSinkErrPermission pins the one-line error -sink fails with when the
// kernel refuses BPF, so the caller never falls back to reading.
func TestSinkErrPermission(t *testing.T) {
	cases := []struct {
		err  error
		perm bool
	}{
		{fmt.Errorf("map create: %w", unix.EPERM), true},
		{fmt.Errorf("load: %w", os.ErrPermission), true},
		{fmt.Errorf("map create: %w", unix.ENOMEM), false},
	}
	for _, c := range cases {
		got := sinkErr("create per-CPU counter map", c.err)
		if errors.Is(got, ErrSinkPermission) != c.perm || strings.Contains(got.Error(), "\n") {
			t.Fatalf("sinkErr(%v) = %v", c.err, got)
		}
	}
}
