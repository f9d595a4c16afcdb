package bench

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after it ends.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// testSubs makes n loopback subscriber sockets registered with rd and
// returns them with their ports.
func testSubs(t *testing.T, rd *reader, n int) ([]*subscriber, []uint16) {
	t.Helper()
	var subs []*subscriber
	var ports []uint16
	for i := range n {
		fd, port, err := udpSocket(loopback, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		s := &subscriber{id: i, fd: fd}
		s.ptKind[102] = kindVideo
		subs = append(subs, s)
		ports = append(ports, port)
	}
	t.Cleanup(func() { closeSubs(subs) })
	for _, s := range subs {
		if err := rd.add(s); err != nil {
			t.Fatal(err)
		}
	}
	return subs, ports
}

func rtpPlain(seq uint16, payload []byte) []byte {
	p := make([]byte, 12, 12+len(payload))
	p[0], p[1] = 0x80, 102
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], uint32(seq)*3000)
	binary.BigEndian.PutUint32(p[8:], 0xabcdef)
	return append(p, payload...)
}

func waitCounter(t *testing.T, rd *reader, k int, want uint64) [nCounters]uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := rd.snapshot()
		if c[k] >= want || time.Now().After(deadline) {
			time.Sleep(100 * time.Millisecond)
			return rd.snapshot()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReaderCountsKnownLoss sends a known sequence with deliberate gaps to
// three loopback sockets and checks the packet counts and loss ratio.
func TestReaderCountsKnownLoss(t *testing.T) {
	checkGoroutines(t)
	rd, err := newReader(readerConfig{capacity: 8, verifyEvery: 16})
	if err != nil {
		t.Fatal(err)
	}
	rd.start()
	defer rd.close()
	_, ports := testSubs(t, rd, 3)
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	payload := make([]byte, 200)
	for seq := range uint16(1000) {
		if seq%10 == 5 {
			continue // 100 deliberate gaps per subscriber
		}
		for _, port := range ports {
			if err := unix.Sendto(tx, rtpPlain(seq, payload), 0, sockaddr(netip.AddrPortFrom(loopback, port))); err != nil {
				t.Fatal(err)
			}
		}
		if seq%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	c := waitCounter(t, rd, ctrRTP, 2700)
	if c[ctrRTP] != 2700 || c[ctrExpected] != 3000 || c[ctrGaps] != 300 || c[ctrLate] != 0 {
		t.Fatalf("rtp=%d expected=%d gaps=%d late=%d", c[ctrRTP], c[ctrExpected], c[ctrGaps], c[ctrLate])
	}
	if l := lossRatio(c[ctrRTP], c[ctrExpected]); l < 0.0999 || l > 0.1001 {
		t.Fatalf("loss ratio %v, want 0.1", l)
	}
	if c[ctrBytes] != 2700*212 || c[ctrSyscalls] == 0 {
		t.Fatalf("bytes=%d syscalls=%d", c[ctrBytes], c[ctrSyscalls])
	}
}

func testKeys(t testing.TB) (*srtp.Context, *subKeys) {
	key := []byte("0123456789abcdef")
	salt := []byte("saltsaltsalt")
	enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	return enc, &subKeys{dec: dec}
}

// keyframePayload is an FU-A start fragment of an IDR slice with a stamp.
func keyframePayload(n int) []byte {
	p := make([]byte, n)
	p[0], p[1] = 0x7c, 0x85
	stamp(p)
	return p
}

// TestReaderSRTPVerify checks SRTP authentication on samples, latency stamps
// and first-keyframe detection over a loopback socket.
func TestReaderSRTPVerify(t *testing.T) {
	checkGoroutines(t)
	rd, err := newReader(readerConfig{capacity: 4, verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	rd.start()
	defer rd.close()
	subs, ports := testSubs(t, rd, 1)
	enc, keys := testKeys(t)
	subs[0].keys.Store(keys)
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	dst := sockaddr(netip.AddrPortFrom(loopback, ports[0]))
	for seq := range uint16(64) {
		pkt, err := enc.EncryptRTP(nil, rtpPlain(seq, keyframePayload(300)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if seq == 10 {
			pkt[40] ^= 0xff // tampered: must fail authentication
		}
		if err := unix.Sendto(tx, pkt, 0, dst); err != nil {
			t.Fatal(err)
		}
	}
	c := waitCounter(t, rd, ctrRTP, 64)
	if c[ctrRTP] != 64 || c[ctrVerified] != 63 || c[ctrAuthFail] != 1 || c[ctrStamps] != 63 {
		t.Fatalf("rtp=%d verified=%d authfail=%d stamps=%d", c[ctrRTP], c[ctrVerified], c[ctrAuthFail], c[ctrStamps])
	}
	if subs[0].firstKeyframe.Load() == 0 {
		t.Fatal("keyframe not detected")
	}
	if p50 := histQuantile(rd.lat.snapshot(), 0.5); p50 < 0 || p50 > 1e6 {
		t.Fatalf("latency p50 %v µs", p50)
	}
}

// TestReaderPacketZeroAlloc pins the per-packet receive path (accounting
// plus SRTP decrypt and stamp check) at zero allocations.
func TestReaderPacketZeroAlloc(t *testing.T) {
	rd, err := newReader(readerConfig{capacity: 1, verifyEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.ep.close()
	enc, keys := testKeys(t)
	s := &subscriber{fd: -1}
	s.ptKind[102] = kindVideo
	s.keys.Store(keys)
	s.kfSeen = true
	pkts := make([][]byte, 300)
	for i := range pkts {
		p := make([]byte, 16)
		p[0] = 0x41
		p = append(p, make([]byte, 1100)...)
		stamp(p)
		if pkts[i], err = enc.EncryptRTP(nil, rtpPlain(uint16(i), p), nil); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		rd.packet(s, pkts[i], monoNow())
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if rd.c[ctrVerified] != uint64(i) || rd.c[ctrAuthFail] != 0 {
		t.Fatalf("verified %d of %d", rd.c[ctrVerified], i)
	}
}

func BenchmarkReaderPacket(b *testing.B) {
	for _, every := range []int{1, 16} {
		b.Run("verify-every="+itoa(every), func(b *testing.B) {
			rd, _ := newReader(readerConfig{capacity: 1, verifyEvery: every})
			defer rd.ep.close()
			enc, keys := testKeys(b)
			s := &subscriber{fd: -1}
			s.ptKind[102] = kindVideo
			s.keys.Store(keys)
			s.kfSeen = true
			pkts := make([][]byte, 1<<14)
			for i := range pkts {
				pkts[i], _ = enc.EncryptRTP(nil, rtpPlain(uint16(i), make([]byte, 1188)), nil)
			}
			b.ReportAllocs()
			b.SetBytes(1200)
			b.ResetTimer()
			for i := range b.N {
				if i > 0 && i%len(pkts) == 0 {
					b.StopTimer()
					s.keys.Store(&subKeys{dec: mustCtx(b)})
					s.streams = [4]streamStat{}
					b.StartTimer()
				}
				rd.packet(s, pkts[i%len(pkts)], 0)
			}
		})
	}
}

func mustCtx(b *testing.B) *srtp.Context {
	_, k := testKeys(b)
	return k.dec
}

func itoa(n int) string { return fmtInt(n) }

func fmtInt(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmtInt(n/10) + string(rune('0'+n%10))
}
