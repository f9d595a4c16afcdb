package fastpath

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/udpio"
)

// Benchmarks. One op is one publisher packet (1200 B on the wire); the
// custom metric ns/egress-pkt divides by the subscribers it went to. The
// subscribers are real UDP sockets on loopback that are never read (4 KB
// receive buffers: the kernel drops at enqueue), as in
// shared/notes/performance-anchors.md §3.5, so the kernel's send path is in
// the figure. Results and commands: bench/results/fastpath-gotest.md.

var benchSubs = []int{1, 10, 100, 1000}

// cpuNow is the process's user+system CPU time: beside wall time it keeps
// the figures honest on a shared machine, where other processes take turns
// on the same CPUs.
func cpuNow() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// burst is how many publisher packets one receive batch carries: one video
// frame's worth, the case per-player GSO is for.
const burst = 16

// BenchmarkFanout drives one core directly (no recvmmsg): decrypt once,
// rewrite and encrypt per subscriber, sendmmsg (gso=off) or one UDP GSO
// send per subscriber per batch (gso=on).
func BenchmarkFanout(b *testing.B) {
	for _, prof := range []struct {
		name string
		p    srtp.ProtectionProfile
	}{{"gcm", gcm}, {"cm", cm}} {
		for _, subs := range benchSubs {
			for _, gso := range []bool{false, true} {
				if prof.name == "cm" && gso {
					continue
				}
				b.Run(fmt.Sprintf("srtp=%s/subs=%d/gso=%v", prof.name, subs, gso), func(b *testing.B) {
					benchFanout(b, prof.p, subs, gso, 0)
				})
			}
		}
	}
}

func benchFanout(b *testing.B, p srtp.ProtectionProfile, subs int, gso bool, layers int) {
	benchFanoutRig(b, rigOptions{cfg: Config{Cores: 1, GSO: gso}, subs: subs, rcvbuf: 4096, profile: p, layers: layers})
}

func benchFanoutRig(b *testing.B, o rigOptions) {
	r := newRig(b, o)
	subs, layers := o.subs, o.layers
	const chunk = 1024
	bufs := make([][]byte, chunk)
	dgrams := make([][]byte, chunk)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	fill := func(n int) {
		for i := range n {
			if layers > 0 { // simulcast: a burst (a frame) of each layer in turn (layers_test.go)
				dgrams[i] = r.nextLayer(bufs[i], i/burst%layers)
			} else {
				dgrams[i] = r.next(bufs[i])
			}
		}
	}
	// Warm up: SRTP state for every subscriber, the first keyframe PLI.
	fill(burst)
	r.drive(0, dgrams[:burst]...)
	b.SetBytes(int64(subs * wireSize))
	b.ReportAllocs()
	tx0 := r.e.Stats().TxPackets
	b.ResetTimer()
	var cpu time.Duration
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(chunk, b.N-done)
		fill(n)
		b.StartTimer()
		c0 := cpuNow()
		for i := 0; i < n; i += burst {
			r.drive(0, dgrams[i:min(i+burst, n)]...)
		}
		cpu += cpuNow() - c0
		done += n
	}
	b.StopTimer()
	egress := float64(b.N * subs)
	if layers > 0 { // each player gets one layer: count what was sent
		egress = float64(r.e.Stats().TxPackets - tx0)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/egress, "ns/egress-pkt")
	b.ReportMetric(float64(cpu.Nanoseconds())/egress, "cpu-ns/egress-pkt")
	if s := r.e.Stats(); s.DropTotal() != 0 {
		b.Fatalf("drops %v", s.Drops)
	}
}

// BenchmarkFloor is the bare loop beside BenchmarkFanout: for the same
// subscribers and batches, only pion GCM EncryptRTP into a preallocated
// sendmmsg batch and sendmmsg(64). No demux, no decrypt, no table, no
// rewrite: what any server must at least spend per egress packet.
func BenchmarkFloor(b *testing.B) {
	for _, subs := range benchSubs {
		b.Run(fmt.Sprintf("srtp=gcm/subs=%d", subs), func(b *testing.B) {
			conns, err := udpio.ListenGroup(udpio.Options{Addr: mustAddr("127.0.0.1:0")}, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer conns[0].Close()
			keys := newKeys(b, gcm)
			type sub struct {
				ctx *srtp.Context
				sa  udpio.Sockaddr
			}
			ss := make([]sub, subs)
			for i := range ss {
				ss[i].ctx, _ = srtp.CreateContext(keys.LocalKey, keys.LocalSalt, gcm)
				conns[0].EncodeAddr(&ss[i].sa, newSink(b, 4096).addr)
			}
			out := udpio.NewBatch(64)
			plain := make([]byte, 12+payloadSize)
			plain[0], plain[1] = 0x80, playerPT
			var hdr rtp.Header
			var seq uint16
			round := func(n int) {
				for s := range ss {
					for k := range n {
						plain[2], plain[3] = byte((seq+uint16(k))>>8), byte(seq+uint16(k))
						plain[8], plain[10], plain[11] = 0xa0, byte(s>>8), byte(s)
						buf := out.Next()
						if buf == nil {
							out.Flush(conns[0])
							buf = out.Next()
						}
						enc, err := ss[s].ctx.EncryptRTP(buf, plain, &hdr)
						if err != nil {
							b.Fatal(err)
						}
						out.Commit(len(enc), &ss[s].sa)
					}
				}
				out.Flush(conns[0])
				seq += uint16(n)
			}
			round(burst) // warm-up: SRTP state for every subscriber
			b.SetBytes(int64(subs * wireSize))
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNow()
			for i := 0; i < b.N; i += burst {
				round(min(burst, b.N-i))
			}
			cpu := cpuNow() - c0
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/egress-pkt")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*subs), "cpu-ns/egress-pkt")
		})
	}
}

// BenchmarkHotStream runs the real loops (recvmmsg, rings, eventfd
// wake-ups) for one stream whose subscribers are spread over every core,
// fed by a publisher over loopback with a window of packets in flight.
// Compare cores=1 and cores=2 (wall ns/egress-pkt; loss-% is egress the
// server counted as dropped or never sent). wake=timeout replaces eventfd
// wake-ups with a 100 µs poll.
func BenchmarkHotStream(b *testing.B) {
	const subs, window = 1000, 64
	for _, tc := range []struct {
		cores int
		wake  time.Duration
	}{{1, 0}, {2, 0}, {2, 100 * time.Microsecond}} {
		name := fmt.Sprintf("cores=%d/subs=%d/wake=eventfd", tc.cores, subs)
		if tc.wake > 0 {
			name = fmt.Sprintf("cores=%d/subs=%d/wake=timeout", tc.cores, subs)
		}
		b.Run(name, func(b *testing.B) {
			r := newRig(b, rigOptions{cfg: Config{Cores: tc.cores, WakeTimeout: tc.wake}, subs: subs, rcvbuf: 4096,
				playerCore: func(i int) int { return i % tc.cores }})
			r.e.Start()
			buf := make([]byte, 1500)
			if err := unix.Connect(r.pub.fd, &unix.SockaddrInet4{Port: r.e.Port(), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				b.Fatal(err)
			}
			send := func(p []byte) {
				if _, err := unix.Write(r.pub.fd, p); err != nil {
					b.Fatal(err)
				}
			}
			egress := func() uint64 { s := r.e.Stats(); return s.TxPackets - s.PLIOut + s.DropTotal() }
			for range 4 { // warm-up
				send(r.next(buf))
			}
			waitFor(b, func() bool { return egress() >= 4*subs })
			base, baseTx := egress(), r.e.Stats().TxPackets-r.e.Stats().PLIOut-r.e.Stats().RTCPOut
			b.SetBytes(int64(subs * wireSize))
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuNow()
			for i := 0; i < b.N; i++ {
				for uint64(i)-(egress()-base)/subs >= window {
					time.Sleep(100 * time.Microsecond) // leave the CPUs to the cores
				}
				send(r.next(buf))
			}
			waitFor(b, func() bool { return egress()-base >= uint64(b.N*subs) })
			cpu := cpuNow() - c0
			b.StopTimer()
			tx := r.e.Stats().TxPackets - r.e.Stats().PLIOut - r.e.Stats().RTCPOut - baseTx
			want := float64(b.N * subs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/want, "ns/egress-pkt")
			b.ReportMetric(want/b.Elapsed().Seconds()/1e6, "Mpps")
			b.ReportMetric(100*(want-float64(tx))/want, "loss-%")
			b.ReportMetric(float64(cpu.Nanoseconds())/want, "cpu-ns/egress-pkt")
		})
	}
}
