package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"
)

// floorCfg is the floor loop: N UDP sockets as subscribers, one sender that
// encrypts one RTP packet per subscriber per round with AEAD_AES_128_GCM
// into a caller buffer and sends them with sendmmsg in batches of 64. It is
// the cost of fan-out with no server logic: the denominator of every
// server/floor ratio.
type floorCfg struct {
	subs      int
	ppsPerSub float64 // 0 = as fast as possible
	pktSize   int     // whole RTP packet, header included
	dur       time.Duration
	cpus      []int // sender CPUs (the server's, for a like-for-like ratio)
	readers   int
	rcvbuf    int
	benchCPUs []int
	poll      time.Duration // readers' -rx-poll, as for the subscribers
	sink      bool          // -sink: count and drop in a socket filter, no readers
}

// streamPPS is the packet rate of the synthetic publisher at bitrate.
func streamPPS(bitrate, pktSize, fps int) float64 {
	audioBps := 50 * audioPktBytes * 8
	videoBps := max(bitrate-audioBps, 8*pktSize)
	perFrame := max(1, (videoBps/8/fps+pktSize-1)/pktSize)
	return float64(perFrame*fps + 50)
}

func floorConfig(c *Config, subs int) floorCfg {
	return floorCfg{subs: subs, ppsPerSub: streamPPS(c.Bitrate, c.PktSize, 30), pktSize: 1200,
		dur: c.Dur, cpus: c.ServerCPUs, readers: c.Readers, rcvbuf: c.RcvBuf, benchCPUs: c.BenchCPUs,
		poll: c.RxPoll, sink: c.Sink}
}

// floorResult is what the floor measured.
type floorResult struct {
	subs           int
	sent, received uint64
	expected       uint64
	wall           float64
	senderCPU      uint64 // µs
	readerCPU      uint64 // µs
}

func (f *floorResult) cpuPerPacket() float64 {
	if f.sent == 0 {
		return -1
	}
	return float64(f.senderCPU) / float64(f.sent)
}

func (f *floorResult) apply(r *Result) {
	r.FloorCPUUsPerPacket = f.cpuPerPacket()
	r.FloorEgressPPS = float64(f.sent) / f.wall
	r.FloorLossRatio = lossRatio(f.received, f.expected)
	if r.ServerCPUUsPerPacket > 0 && r.FloorCPUUsPerPacket > 0 {
		r.ServerToFloorRatio = r.ServerCPUUsPerPacket / r.FloorCPUUsPerPacket
	}
}

func (f *floorResult) asResult(c *Config) Result {
	r := Result{Mode: "floor", Server: "floor", SubscribersRequested: f.subs, SubscribersConnected: f.subs,
		ReceiveMode: receiveMode(c), RxPollUs: float64(c.RxPoll) / 1e3,
		DurationS: f.wall, BitrateBPS: c.Bitrate, PacketsReceived: f.received, PacketsExpected: f.expected,
		EgressPPS: float64(f.received) / f.wall, ServerCPUPercent: -1, ServerCPUUsPerPacket: -1,
		ServerRSSMB: -1, LatencyP50Ms: -1, LatencyP99Ms: -1, ConnectP50Ms: -1, ConnectP99Ms: -1,
		FirstKeyframeP50Ms: -1, FirstKeyframeP99Ms: -1, ServerToFloorRatio: -1}
	r.LossRatio = lossRatio(f.received, f.expected)
	r.EgressMbps = r.EgressPPS * float64(1200*8) / 1e6
	if f.received > 0 {
		r.BenchCPUUsPerPacket = float64(f.readerCPU) / float64(f.received)
	}
	r.BenchReaderCPUPercent = float64(f.readerCPU) / (f.wall * 1e4)
	f.apply(&r)
	return r
}

// floorSnap is what the floor reads at its window edges.
type floorSnap struct {
	received, expected uint64
	readerCPU          uint64 // µs
}

// runFloor runs the floor loop for warm-up plus dur and measures it. Its
// sockets are received like the subscribers': by readers (blocking or
// -rx-poll), or with -sink by the counting socket filter and no reader.
func runFloor(ctx context.Context, fc floorCfg) (*floorResult, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	var readers []*reader
	var subs []*subscriber
	var sk *sink
	defer func() {
		for _, rd := range readers {
			rd.close()
		}
		closeSubs(subs)
		if sk != nil {
			sk.close()
		}
	}()
	if fc.sink {
		var err error
		if sk, err = newSink(); err != nil {
			return nil, err
		}
	} else {
		for range max(fc.readers, 1) {
			rd, err := newReader(readerConfig{capacity: fc.subs/max(fc.readers, 1) + 2, verifyEvery: 1,
				cpus: fc.benchCPUs, poll: fc.poll})
			if err != nil {
				return nil, err
			}
			readers = append(readers, rd)
			rd.start()
		}
	}
	dsts := make([]unix.RawSockaddrInet4, fc.subs)
	for i := range fc.subs {
		fd, port, err := udpSocket(lo, fc.rcvbuf)
		if err != nil {
			return nil, err
		}
		s := &subscriber{id: i, fd: fd}
		subs = append(subs, s)
		if sk != nil {
			err = sk.attach(fd)
		} else {
			err = readers[i%len(readers)].add(s)
		}
		if err != nil {
			return nil, err
		}
		dsts[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: lo.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&dsts[i].Port))[:], port)
	}
	fs := newFloorSender(fc, dsts)
	if err := fs.init(); err != nil {
		return nil, err
	}
	snap := func() (fsn floorSnap) {
		if sk != nil { // runs on the sender's goroutine, so fs.sent is stable
			c, _ := sk.snapshot()
			return floorSnap{received: c[sinkMedia].Packets, expected: fs.sent}
		}
		for _, rd := range readers {
			c := rd.snapshot()
			fsn.received += c[ctrRTP]
			fsn.expected += c[ctrExpected]
			if us, err := threadCPUMicros(int(rd.tid.Load())); err == nil {
				fsn.readerCPU += us
			}
		}
		return
	}
	res := &floorResult{subs: fc.subs}
	done := make(chan error, 1)
	go func() { done <- fs.run(ctx, fc, res, snap) }()
	if err := <-done; err != nil {
		return nil, err
	}
	return res, nil
}

// floorSender is the one sending thread of the floor loop.
type floorSender struct {
	dsts  []unix.RawSockaddrInet4
	ctxs  []*srtp.Context
	batch *mmsgBatch
	plain []byte
	hdr   rtp.Header
	fd    int
	seq   uint16
	ts    uint32
	sent  uint64
	errs  uint64
}

func newFloorSender(fc floorCfg, dsts []unix.RawSockaddrInet4) *floorSender {
	return &floorSender{dsts: dsts, batch: newBatch(batchSize, fc.pktSize+64), plain: make([]byte, fc.pktSize)}
}

func (f *floorSender) init() error {
	key := make([]byte, 16+12)
	for range f.dsts {
		_, _ = rand.Read(key)
		c, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			return fmt.Errorf("floor srtp: %w", err)
		}
		f.ctxs = append(f.ctxs, c)
	}
	p := f.plain
	p[0], p[1] = 0x80, 102
	binary.BigEndian.PutUint32(p[8:], 0xf1004)
	for i := 12; i < len(p); i++ {
		p[i] = byte(i)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("floor socket: %w", err)
	}
	f.fd = fd
	return nil
}

// round encrypts one packet per subscriber and sends them 64 at a time.
func (f *floorSender) round() {
	f.seq++
	f.ts += 3000
	binary.BigEndian.PutUint16(f.plain[2:], f.seq)
	binary.BigEndian.PutUint32(f.plain[4:], f.ts)
	stamp(f.plain[12:])
	n := 0
	for i := range f.dsts {
		out, err := f.ctxs[i].EncryptRTP(f.batch.bufs[n][:0], f.plain, &f.hdr)
		if err != nil {
			f.errs++
			continue
		}
		f.batch.setLen(n, len(out))
		f.batch.msgs[n].Hdr.Name = (*byte)(unsafe.Pointer(&f.dsts[i]))
		f.batch.msgs[n].Hdr.Namelen = unix.SizeofSockaddrInet4
		n++
		if n == len(f.batch.msgs) || i == len(f.dsts)-1 {
			f.flush(n)
			n = 0
		}
	}
}

func (f *floorSender) flush(n int) {
	for off := 0; off < n; {
		got, errno := sendmmsg(f.fd, f.batch, off, n-off)
		if errno != 0 || got <= 0 {
			f.errs++
			return
		}
		off += got
		f.sent += uint64(got)
	}
}

// run paces rounds at ppsPerSub (or runs flat out), measures the sender
// thread's CPU over the window after a 500 ms warm-up, then closes.
func (f *floorSender) run(ctx context.Context, fc floorCfg, res *floorResult, snap func() floorSnap) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer unix.Close(f.fd)
	if len(fc.cpus) > 0 {
		if err := setAffinity(0, fc.cpus); err != nil {
			return err
		}
	}
	tid := unix.Gettid()
	start := time.Now()
	warm := start.Add(500 * time.Millisecond)
	end := warm.Add(fc.dur)
	var rounds int64
	var c0 floorSnap
	var s0, sent0 uint64
	var t0 time.Time
	measuring := false
	for ctx.Err() == nil {
		now := time.Now()
		if !measuring && now.After(warm) {
			measuring, t0, sent0 = true, now, f.sent
			c0 = snap()
			s0, _ = threadCPUMicros(tid)
		}
		if now.After(end) {
			break
		}
		due := int64(now.Sub(start).Seconds() * fc.ppsPerSub)
		if fc.ppsPerSub <= 0 {
			due = rounds + 1
		}
		for ; rounds < due; rounds++ {
			f.round()
		}
		if fc.ppsPerSub > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	s1, _ := threadCPUMicros(tid)
	time.Sleep(100 * time.Millisecond) // let the readers drain
	c1 := snap()
	res.wall = time.Since(t0).Seconds() - 0.1
	res.sent = f.sent - sent0
	res.senderCPU = s1 - s0
	res.received = c1.received - c0.received
	res.expected = c1.expected - c0.expected
	res.readerCPU = c1.readerCPU - c0.readerCPU
	return nil
}
