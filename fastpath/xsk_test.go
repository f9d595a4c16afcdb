package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/xskio"
)

// memXSK is an in-memory xskio.Socket: RX frames the test queues, TX
// frames counted and completed at once.
type memXSK struct {
	umem  []byte
	rxq   []unix.XDPDesc
	free  []uint64
	txN   int
	lastN int // bytes of the last frame sent
}

func newMemXSK() *memXSK {
	m := &memXSK{umem: make([]byte, 256*2048), rxq: make([]unix.XDPDesc, 0, 8)}
	for i := 255; i >= 128; i-- {
		m.free = append(m.free, uint64(i*2048))
	}
	return m
}

func (m *memXSK) FD() int               { return -1 }
func (m *memXSK) UMEM() []byte          { return m.umem }
func (m *memXSK) Refill([]unix.XDPDesc) {}
func (m *memXSK) Kick() int             { return 1 }
func (m *memXSK) Release(a uint64)      { m.free = append(m.free, a) }
func (m *memXSK) Statistics() (unix.XDPStatistics, error) {
	return unix.XDPStatistics{}, nil
}
func (m *memXSK) Receive(d []unix.XDPDesc) int {
	n := copy(d, m.rxq)
	m.rxq = append(m.rxq[:0], m.rxq[n:]...)
	return n
}
func (m *memXSK) TXFrame() (uint64, bool) {
	if len(m.free) == 0 {
		return 0, false
	}
	a := m.free[len(m.free)-1]
	m.free = m.free[:len(m.free)-1]
	return a, true
}
func (m *memXSK) Transmit(d []unix.XDPDesc) int {
	for _, x := range d {
		m.txN++
		m.lastN = int(x.Len)
		m.free = append(m.free, x.Addr)
	}
	return len(d)
}

// queueFrame puts b from src as an IPv4 UDP frame on the RX ring.
func (m *memXSK) queueFrame(b []byte, src netip.AddrPort) {
	a := uint64(len(m.rxq) * 2048)
	f := m.umem[a : a+uint64(42+len(b))]
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(b)))
	binary.BigEndian.PutUint16(ip[6:], 0)
	ip[9] = 17
	s := src.Addr().As4()
	copy(ip[12:16], s[:])
	binary.BigEndian.PutUint16(ip[20:], src.Port())
	binary.BigEndian.PutUint16(ip[24:], uint16(8+len(b)))
	copy(ip[28:], b)
	m.rxq = append(m.rxq, unix.XDPDesc{Addr: a, Len: uint32(len(f))})
}

// TestAFXDPCore: a core given an AF_XDP port takes the publisher's RTP
// from its RX ring and sends each of its 8 players' copies as a frame on
// the TX ring, not the socket, allocating nothing per packet.
func TestAFXDPCore(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1, GSO: true}, subs: 8, rcvbuf: 4096})
	m := newMemXSK()
	hops := xskio.NewStaticHops(map[netip.Addr]xskio.Hop{
		netip.MustParseAddr("127.0.0.1"): {Src: netip.MustParseAddr("127.0.0.1"), OK: true},
	})
	defer hops.Close()
	r.e.AttachXSK(0, xskio.NewPort(m, hops, uint16(r.e.Port()), 8, 2048))
	c := r.e.cores[0]
	buf := make([]byte, 1500)
	round := func() {
		m.queueFrame(r.next(buf), r.pub.addr)
		c.begin()
		c.recvXSK()
		c.finish()
	}
	round()
	if m.txN < 8 || m.lastN < 42+12 {
		t.Fatalf("%d frames sent for 8 players (and RTCP to the publisher)", m.txN)
	}
	zeroAllocs(t, "XSK RX → 8 players → XSK TX, one core", round)
	st, ok := r.e.XSKStats()
	s := r.e.Stats()
	if !ok[0] || st[0].RxFrames < 251 || st[0].TxFrames < 8*st[0].RxFrames || st[0].TxFrames != s.TxPackets ||
		st[0].TxFrames != uint64(m.txN) || st[0].Fallbacks != 0 || s.DropTotal() != 0 {
		t.Fatalf("XSK %+v; core tx %d drops %v", st[0], s.TxPackets, s.Drops)
	}
}
