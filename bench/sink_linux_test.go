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
	"time"
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

// TestSubscriberWantsSink pins when a subscriber leaves user-space reading:
// connected and past its first keyframe, or asked by sinkSubs at the end of
// its step; never while ICE or DTLS still need its reader.
func TestSubscriberWantsSink(t *testing.T) {
	cases := []struct {
		phase   int32
		kfSeen  bool
		sinkNow bool
		want    bool
	}{
		{phaseICE, false, false, false},
		{phaseDTLS, false, false, false},
		{phaseDTLS, true, false, false}, // keys in, phase not yet: the next sweep switches it
		{phaseMedia, false, false, false},
		{phaseMedia, true, false, true},
		{phaseMedia, false, true, true}, // the step ended without a keyframe
	}
	for _, c := range cases {
		s := &subscriber{kfSeen: c.kfSeen}
		s.phase.Store(c.phase)
		s.sinkNow.Store(c.sinkNow)
		if got := s.wantsSink(); got != c.want {
			t.Errorf("phase %d, keyframe %v, sinkNow %v: wantsSink %v, want %v", c.phase, c.kfSeen, c.sinkNow, got, c.want)
		}
	}
}

// sinkMediaSince returns the sink's media packets counted since before.
func sinkMediaSince(t *testing.T, sk *sink, before sinkCounts) uint64 {
	t.Helper()
	now, err := sk.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return now.sub(before)[sinkMedia].Packets
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startSinkReader runs a polling reader that switches its subscribers to
// sk; it stops when the test ends (before checkGoroutines looks).
func startSinkReader(t *testing.T, sk *sink) *reader {
	t.Helper()
	rd, err := newReader(readerConfig{capacity: 4, verifyEvery: 16, poll: time.Millisecond, sink: sk})
	if err != nil {
		t.Fatal(err)
	}
	rd.start()
	t.Cleanup(rd.close)
	return rd
}

// TestReaderSinksAtKeyframe sends SRTP video to a connected subscriber of a
// -sink reader: it is read in user space until its first keyframe, then its
// reader switches it to the filter by itself, and every datagram is counted
// exactly once, by the reader before the switch or by the sink after it (or,
// on a host whose UDP memory is under pressure, refused by the kernel before
// it was queued: see memoryDrops).
func TestReaderSinksAtKeyframe(t *testing.T) {
	sk := testSink(t)
	checkGoroutines(t)
	rd := startSinkReader(t, sk)
	subs, ports := testSubs(t, rd, 1)
	s := subs[0]
	enc, keys := testKeys(t)
	s.keys.Store(keys)
	s.phase.Store(phaseMedia)
	before, err := sk.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	dst := sockaddr(netip.AddrPortFrom(loopback, ports[0]))
	seq := uint16(0)
	send := func(n int, keyframe bool) {
		for range n {
			payload := make([]byte, 300)
			payload[0] = 0x41 // a non-IDR slice
			if keyframe {
				payload = keyframePayload(300)
				keyframe = false
			}
			pkt, err := enc.EncryptRTP(nil, rtpPlain(seq, payload), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(tx, pkt, 0, dst); err != nil {
				t.Fatal(err)
			}
			seq++
		}
	}
	send(50, false)
	waitFor(t, "the first 50 read", func() bool { return rd.snapshot()[ctrRTP]+memoryDrops(t, sk, before, s.fd) >= 50 })
	if s.sunk.Load() || s.firstKeyframe.Load() != 0 {
		t.Fatal("switched to the sink before a keyframe")
	}
	// A keyframe, then media the reader or the sink counts; again if the
	// keyframe was refused for memory.
	for deadline := time.Now().Add(5 * time.Second); !s.sunk.Load(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no switch to the sink after keyframes")
		}
		send(50, true)
	}
	send(100, false)
	var read, sunk, refused uint64
	waitFor(t, "every datagram counted", func() bool {
		read, sunk, refused = rd.snapshot()[ctrRTP], sinkMediaSince(t, sk, before), memoryDrops(t, sk, before, s.fd)
		return read+sunk+refused >= uint64(seq)
	})
	time.Sleep(20 * time.Millisecond)
	read, sunk, refused = rd.snapshot()[ctrRTP], sinkMediaSince(t, sk, before), memoryDrops(t, sk, before, s.fd)
	t.Logf("of %d datagrams: read %d, sink counted %d, refused for memory %d", seq, read, sunk, refused)
	if read+sunk+refused != uint64(seq) || sunk < 100 {
		t.Fatalf("read %d + sink %d + refused %d, want %d: each once, the last 100 by the sink", read, sunk, refused, seq)
	}
	if s.firstKeyframe.Load() == 0 || rd.inSet.Load() != 0 || rd.switchError() != nil {
		t.Fatalf("keyframe at %d, %d sockets still in the epoll set, error %v",
			s.firstKeyframe.Load(), rd.inSet.Load(), rd.switchError())
	}
}

// TestSinkSubsSwitchesTheRest runs the end-of-step fallback: sinkSubs has
// the readers switch the connected subscribers that saw no keyframe, skips
// the ones already on the sink and the ones that never connected (still
// read), and waits until the switch is done.
func TestSinkSubsSwitchesTheRest(t *testing.T) {
	sk := testSink(t)
	checkGoroutines(t)
	rd := startSinkReader(t, sk)
	subs, ports := testSubs(t, rd, 3)
	early, noKeyframe, failed := subs[0], subs[1], subs[2]
	for _, s := range []*subscriber{early, noKeyframe} {
		s.phase.Store(phaseMedia)
		s.connected.Store(monoNow())
	}
	failed.phase.Store(phaseDTLS)
	early.sinkNow.Store(true) // as if switched at its keyframe
	waitFor(t, "the early switch", early.sunk.Load)
	var log strings.Builder
	r := &runner{cfg: Config{Log: func(f string, a ...any) { fmt.Fprintf(&log, f, a...) }},
		readers: []*reader{rd}, subs: subs, sink: sk}
	if err := r.sinkSubs(t.Context(), subs); err != nil {
		t.Fatal(err)
	}
	if r.sunk != 2 || !noKeyframe.sunk.Load() || failed.sunk.Load() || failed.sinkNow.Load() ||
		!strings.Contains(log.String(), "2 subscribers counted by the socket filter (1 of this step had no keyframe by the end of the warm-up)") {
		t.Fatalf("sunk %d (no keyframe %v, not connected %v): %s", r.sunk, noKeyframe.sunk.Load(), failed.sunk.Load(), log.String())
	}
	before, err := sk.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	for seq := range uint16(100) {
		for _, port := range ports {
			if err := unix.Sendto(tx, rtpPlain(seq, nil), 0, sockaddr(netip.AddrPortFrom(loopback, port))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The socket not on the sink has memory drops only.
	read := func() uint64 { return rd.snapshot()[ctrRTP] + socketDrops(t, failed.fd) }
	waitFor(t, "the 100 datagrams read", func() bool { return read() >= 100 })
	time.Sleep(20 * time.Millisecond)
	if n := read(); n != 100 {
		t.Fatalf("read or refused for memory %d datagrams, want the 100 of the socket still in the set", n)
	}
	if n := sinkMediaSince(t, sk, before); n != 200 {
		t.Fatalf("sink counted %d, want the 200 of the two sink sockets", n)
	}
}

// memoryDrops returns the datagrams the kernel refused to queue on fd for
// lack of memory, since the sink snapshot before. A UDP socket may queue
// only udp_rmem_min (4 KiB) while the host's UDP memory is over udp_mem[0],
// e.g. while a bench with thousands of lagging sockets runs alongside. The
// socket's sk_drops (SO_MEMINFO) counts those and the filter's drops; the
// sink's count of every class is the latter when fd is the only socket on
// the sink (the tests' case).
func memoryDrops(t *testing.T, sk *sink, before sinkCounts, fd int) uint64 {
	t.Helper()
	now, err := sk.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var filtered uint64
	for _, c := range now.sub(before) {
		filtered += c.Packets
	}
	return socketDrops(t, fd) - filtered
}

// socketDrops returns the datagrams the kernel dropped for fd (sk_drops,
// SO_MEMINFO): the sink filter's drops and those refused for memory.
func socketDrops(t *testing.T, fd int) uint64 {
	t.Helper()
	const skMeminfoDrops, skMeminfoVars = 8, 9 // include/uapi/linux/sock_diag.h
	var mi [skMeminfoVars]uint32
	l := uint32(unsafe.Sizeof(mi))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		t.Fatalf("SO_MEMINFO: %v", e)
	}
	return uint64(mi[skMeminfoDrops])
}
