package xskio

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/udpio"
)

// fakeSocket is an in-memory Socket for the unit tests: a UMEM, RX frames
// the test queues, and a TX ring the kernel "sends" at once on Kick.
type fakeSocket struct {
	umem    []byte
	rxq     []unix.XDPDesc
	refills int
	free    []uint64
	sent    [][]byte
	ring    int // TX ring room
}

const fakeFrame = 2048

func newFakeSocket(frames int) *fakeSocket {
	f := &fakeSocket{umem: make([]byte, frames*fakeFrame), ring: 1 << 20, sent: make([][]byte, 0, 1024)}
	for i := frames - 1; i >= frames/2; i-- {
		f.free = append(f.free, uint64(i*fakeFrame))
	}
	return f
}

func (f *fakeSocket) FD() int          { return -1 }
func (f *fakeSocket) UMEM() []byte     { return f.umem }
func (f *fakeSocket) Kick() int        { return 1 }
func (f *fakeSocket) Release(a uint64) { f.free = append(f.free, a) }
func (f *fakeSocket) Statistics() (unix.XDPStatistics, error) {
	return unix.XDPStatistics{}, nil
}
func (f *fakeSocket) Receive(d []unix.XDPDesc) int {
	n := copy(d, f.rxq)
	f.rxq = append(f.rxq[:0], f.rxq[n:]...)
	return n
}
func (f *fakeSocket) Refill(d []unix.XDPDesc) { f.refills += len(d) }
func (f *fakeSocket) TXFrame() (uint64, bool) {
	if len(f.free) == 0 {
		return 0, false
	}
	a := f.free[len(f.free)-1]
	f.free = f.free[:len(f.free)-1]
	return a, true
}
func (f *fakeSocket) Transmit(d []unix.XDPDesc) int {
	n := min(len(d), f.ring)
	for _, x := range d[:n] {
		if len(f.sent) < cap(f.sent) {
			f.sent = append(f.sent, f.umem[x.Addr:x.Addr+uint64(x.Len)])
		}
		f.free = append(f.free, x.Addr) // sent at once: completed
	}
	return n
}

// TestPortFlush: datagrams to a destination with a hop leave as frames
// (a GSO run split into its datagrams), byte-exact behind valid headers;
// a destination without one goes through the socket, counted; and a full
// round allocates nothing.
func TestPortFlush(t *testing.T) {
	conn, err := udpio.Listen(udpio.Options{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	viaXSK := netip.MustParseAddrPort("10.9.0.2:40000")
	viaSock := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	hop := Hop{Src: netip.MustParseAddr("10.9.0.1"), SrcMAC: [6]byte{2, 1}, DstMAC: [6]byte{2, 2}, OK: true}
	fs := newFakeSocket(64)
	p := NewPort(fs, NewStaticHops(map[netip.Addr]Hop{viaXSK.Addr(): hop}), 8000, 8, fakeFrame)
	out := udpio.NewOut(16, 16*1280, true)
	var saX, saS udpio.Sockaddr
	conn.EncodeAddr(&saX, viaXSK)
	conn.EncodeAddr(&saS, viaSock)
	fill := func() {
		for i := range 3 { // one GSO run of three, the last shorter
			b := out.Buf()
			n := 1000 - 100*(i/2)
			for j := range n {
				b[j] = byte(i + j)
			}
			out.Commit(n, &saX, 7)
		}
		b := out.Buf()
		copy(b, "socket path")
		out.Commit(11, &saS, 9)
	}
	fill()
	sent, dropped := p.Flush(out, conn)
	if sent != 4 || dropped != 0 || out.N != 0 || len(fs.sent) != 3 {
		t.Fatalf("sent %d dropped %d, %d left, %d frames", sent, dropped, out.N, len(fs.sent))
	}
	for i, f := range fs.sent {
		payload, from, ok := parseUDP(f)
		n := 1000 - 100*(i/2)
		if !ok || len(payload) != n || payload[0] != byte(i) || from != netip.AddrPortFrom(hop.Src, 8000) {
			t.Fatalf("frame %d: %v %v %d bytes", i, ok, from, len(payload))
		}
	}
	buf := make([]byte, 100)
	_ = sink.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := sink.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte("socket path")) {
		t.Fatalf("socket fallback: %q %v", buf[:n], err)
	}
	if st := p.Stats(); st.TxFrames != 3 || st.Fallbacks != 1 || st.Kicks != 1 {
		t.Fatalf("stats %+v", st)
	}
	fs.sent = fs.sent[:0]
	allocs := testing.AllocsPerRun(100, func() {
		fill()
		p.Flush(out, conn)
		_, _ = sink.Read(buf)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per flush", allocs)
	}
}

// TestPortRecv: received frames come back as payload and source, a frame
// that is no UDP is counted and skipped, every frame is refilled, and the
// round allocates nothing.
func TestPortRecv(t *testing.T) {
	fs := newFakeSocket(64)
	p := NewPort(fs, NewStaticHops(nil), 8000, 8, fakeFrame)
	hop := Hop{Src: netip.MustParseAddr("10.9.0.2"), OK: true}
	dst := netip.MustParseAddrPort("10.9.0.1:8000")
	queue := func() {
		fs.rxq = fs.rxq[:0]
		for i := range 3 {
			a := uint64(i * fakeFrame)
			f := fs.umem[a : a+uint64(headerLen(dst.Addr())+100)]
			f[headerLen(dst.Addr())] = 0x80
			writeHeaders(f, &hop, 5000+uint16(i), dst)
			if i == 2 {
				f[12] = 0x08
				f[13] = 0x06 // ARP
			}
			fs.rxq = append(fs.rxq, unix.XDPDesc{Addr: a, Len: uint32(len(f))})
		}
	}
	fs.rxq = make([]unix.XDPDesc, 0, 3)
	queue()
	n := p.Recv()
	for i := range n {
		b, from, ok := p.Datagram(i)
		if i < 2 && (!ok || len(b) != 100 || b[0] != 0x80 || from != netip.AddrPortFrom(hop.Src, 5000+uint16(i))) {
			t.Fatalf("frame %d: %v %v %d", i, ok, from, len(b))
		}
		if i == 2 && ok {
			t.Fatal("an ARP frame parsed as UDP")
		}
	}
	p.Done()
	if n != 3 || fs.refills != 3 || p.Stats().RxInvalid != 1 || p.Stats().RxFrames != 3 {
		t.Fatalf("n %d refills %d stats %+v", n, fs.refills, p.Stats())
	}
	allocs := testing.AllocsPerRun(100, func() {
		queue()
		for i := range p.Recv() {
			_, _, _ = p.Datagram(i)
		}
		p.Done()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per receive", allocs)
	}
}
