package bench

import (
	"context"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sample is every counter the bench reads at a window edge.
type sample struct {
	t          time.Time
	ctr        [nCounters]uint64
	lat        []uint64
	srv        procStat
	srvOK      bool
	srvCPU     uint64 // µs
	selfCPU    uint64 // µs
	readersCPU uint64 // µs, sum over reader threads
	pubSent    uint64
	metrics    map[string]float64
}

func (r *runner) sample(ctx context.Context) sample {
	s := sample{t: time.Now(), lat: make([]uint64, histBuckets)}
	for _, rd := range r.readers {
		c := rd.snapshot()
		for k := range c {
			s.ctr[k] += c[k]
		}
		for i, v := range rd.lat.snapshot() {
			s.lat[i] += v
		}
		if us, err := threadCPUMicros(int(rd.tid.Load())); err == nil {
			s.readersCPU += us
		}
	}
	if r.cfg.ServerPID > 0 {
		s.srv, s.srvOK = mustStat(readProcStat(r.cfg.ServerPID, 0))
		if us, err := processCPUMicros(r.cfg.ServerPID); err == nil {
			s.srvCPU = us
		}
	}
	s.selfCPU, _ = processCPUMicros(os.Getpid())
	if r.pub != nil {
		s.pubSent = r.pub.Sent()
	}
	s.metrics = scrapeMetrics(ctx, r.cfg.MetricsURL)
	return s
}

func mustStat(ps procStat, err error) (procStat, bool) { return ps, err == nil }

// measure samples, waits Dur and turns the difference into a Result.
func (r *runner) measure(ctx context.Context, n int, stepSubs []*subscriber) Result {
	a := r.sample(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.Dur):
	}
	b := r.sample(ctx)
	res := r.result(n, a, b)
	res.ConnectP50Ms, res.ConnectP99Ms, res.FirstKeyframeP50Ms, res.FirstKeyframeP99Ms = subTimes(stepSubs)
	res.JitterMs = r.jitter()
	return res
}

// result computes a Result from two samples.
func (r *runner) result(n int, a, b sample) Result {
	wall := b.t.Sub(a.t).Seconds()
	d := func(k int) uint64 { return b.ctr[k] - a.ctr[k] }
	connected := 0
	for _, s := range r.subs {
		if s.connected.Load() != 0 {
			connected++
		}
	}
	res := Result{
		Mode: r.cfg.Mode, Server: serverName(r.cfg.WHEP), SubscribersRequested: n,
		SubscribersConnected: connected, ConnectFailures: r.fails, DurationS: wall,
		BitrateBPS: r.cfg.Bitrate, PacketsReceived: d(ctrRTP), PacketsExpected: d(ctrExpected),
		SeqGaps: d(ctrGaps), OutOfOrder: d(ctrLate), PublisherPackets: b.pubSent - a.pubSent,
		SRTPVerified: d(ctrVerified), SRTPAuthFailures: d(ctrAuthFail), RecvSyscalls: d(ctrSyscalls),
		NACKsSent: d(ctrNACKs), LatencySamples: d(ctrStamps),
		ServerCPUPercent: -1, ServerCPUUsPerPacket: -1, ServerRSSMB: -1,
		FloorCPUUsPerPacket: -1, FloorEgressPPS: -1, FloorLossRatio: -1, ServerToFloorRatio: -1,
	}
	res.LossRatio = lossRatio(res.PacketsReceived, res.PacketsExpected)
	res.EgressPPS = float64(res.PacketsReceived) / wall
	res.EgressMbps = float64(d(ctrBytes)) * 8 / wall / 1e6
	lat := histDiff(a.lat, b.lat)
	res.LatencyP50Ms, res.LatencyP99Ms = usToMs(histQuantile(lat, 0.5)), usToMs(histQuantile(lat, 0.99))
	if res.PacketsReceived > 0 {
		res.BenchCPUUsPerPacket = float64(b.readersCPU-a.readersCPU) / float64(res.PacketsReceived)
	}
	res.BenchReaderCPUPercent = float64(b.readersCPU-a.readersCPU) / (wall * 1e4)
	res.BenchProcessCPUPct = float64(b.selfCPU-a.selfCPU) / (wall * 1e4)
	if a.srvOK && b.srvOK {
		cpu := float64(b.srvCPU - a.srvCPU)
		res.ServerCPUPercent = cpu / (wall * 1e4)
		if res.PacketsReceived > 0 {
			res.ServerCPUUsPerPacket = cpu / float64(res.PacketsReceived)
		}
		res.ServerRSSMB = float64(b.srv.rssPages*int64(os.Getpagesize())) / (1 << 20)
		res.ServerThreads = b.srv.threads
	}
	res.ServerMetrics = metricsDelta(a.metrics, b.metrics)
	return res
}

// lossRatio is 1 - received/expected, clamped to [0, 1].
func lossRatio(received, expected uint64) float64 {
	if expected == 0 || received >= expected {
		return 0
	}
	return 1 - float64(received)/float64(expected)
}

func usToMs(us float64) float64 {
	if us < 0 {
		return -1
	}
	return us / 1000
}

// subTimes returns connect and first-keyframe p50/p99 in ms for subs.
func subTimes(subs []*subscriber) (c50, c99, k50, k99 float64) {
	var conn, kf []float64
	for _, s := range subs {
		if c := s.connected.Load(); c != 0 {
			conn = append(conn, float64(c-s.startNs)/1e6)
		}
		if k := s.firstKeyframe.Load(); k != 0 {
			kf = append(kf, float64(k-s.startNs)/1e6)
		}
	}
	c50, c99 = msQuantiles(conn)
	k50, k99 = msQuantiles(kf)
	return
}

// jitter averages the readers' published video jitter.
func (r *runner) jitter() float64 {
	var sum float64
	for _, rd := range r.readers {
		sum += math.Float64frombits(rd.jitterBits.Load())
	}
	return sum / float64(len(r.readers))
}

// closeSubs closes every subscriber socket; readers must be stopped.
func closeSubs(subs []*subscriber) {
	for _, s := range subs {
		if hc := s.hs.Load(); hc != nil {
			_ = hc.Close()
		}
		if s.fd >= 0 {
			unix.Close(s.fd)
			s.fd = -1
		}
	}
}
