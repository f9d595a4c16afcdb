package bench

import (
	"context"
	"fmt"
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
	sink       sinkCounts    // -sink: what the socket filter counted
	drain      time.Duration // -sink: how long the server took to deliver its backlog at this edge
	drained    bool          // the backlog was delivered within the edge's limit
	metrics    map[string]float64
	// per node (several WHEP URLs or server processes; nodes.go)
	nodeCtr   [][nCounters]uint64
	nodeSink  []sinkCounts
	nodeCPU   []uint64 // µs
	nodeCPUOK []bool
}

// frameEdgeTimeout bounds the wait for the publisher's next video frame
// (one frame is 33 ms at 30 fps).
const frameEdgeTimeout = 250 * time.Millisecond

// Sink window edges. The publisher is held at a frame edge until the sink's
// media count stops moving, so each edge cuts the stream where everything
// sent before it has been delivered: the window's count then matches the
// publisher's packets whatever the server's backlog (a server at 100 % CPU
// runs behind; on the first ramp runs against Fanout the un-drained edges
// made a 1900-subscriber window count 4.9 % more than was sent).
const (
	// drainQuiet: no new media for this long means delivered. 5 ms was
	// fooled on the ramp against Fanout at 2100 subscribers, where the
	// server pinned to a shared CPU can be descheduled that long mid-backlog
	// and the window then counted 1.4 % more than was sent.
	drainQuiet = 20 * time.Millisecond
	drainPoll  = time.Millisecond
	// drainStart bounds the wait at a window's start (backlog left by the
	// connects of the step); a longer backlog is noted in the report.
	drainStart = time.Second
	// drainLate bounds the wait at a window's end: media delivered later
	// than this after the publisher sent its last packet of the window is
	// counted as lost, as a player's jitter buffer would drop it.
	drainLate = 100 * time.Millisecond
)

// drain waits until the sink's media count has not moved for drainQuiet, or
// limit passes; it returns the last count, when it last moved and whether
// it settled. It runs on the publisher's goroutine, which holds the stream.
func (s *sink) drain(limit time.Duration) (sinkCounts, time.Duration, bool) {
	start := time.Now()
	c, err := s.snapshot()
	if err != nil {
		return c, 0, false
	}
	moved := start
	for {
		time.Sleep(drainPoll)
		now := time.Now()
		n, err := s.snapshot()
		if err != nil {
			return c, moved.Sub(start), false
		}
		if n[sinkMedia].Packets != c[sinkMedia].Packets {
			c, moved = n, now
		}
		if now.Sub(moved) >= drainQuiet {
			return c, moved.Sub(start), true
		}
		if now.Sub(start) >= limit {
			return c, moved.Sub(start), false
		}
	}
}

// sample reads every counter at a window edge; drainLimit bounds the sink's
// drain (see drainStart, drainLate).
func (r *runner) sample(ctx context.Context, drainLimit time.Duration) sample {
	s := sample{lat: make([]uint64, histBuckets), drained: true}
	// The counters that make the window's ratios are read together, at a
	// frame edge of the publisher: packets sent and packets counted then
	// agree up to what is in flight, which with -sink is drained first.
	edge := func() {
		if r.sink != nil {
			s.sink, s.drain, s.drained = r.sink.drain(drainLimit)
		}
		s.t = time.Now()
		if r.pub != nil {
			s.pubSent = r.pub.Sent()
		}
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
		for _, pid := range r.cfg.ServerPIDs {
			if us, err := processCPUMicros(pid); err == nil {
				s.srvCPU += us
			}
		}
		r.sampleNodes(&s)
		s.selfCPU, _ = processCPUMicros(os.Getpid())
	}
	if r.pub != nil {
		r.pub.AtFrameEdge(edge, frameEdgeTimeout)
	} else {
		edge()
	}
	s.srvOK = len(r.cfg.ServerPIDs) > 0
	for _, pid := range r.cfg.ServerPIDs {
		ps, err := readProcStat(pid, 0)
		s.srvOK = s.srvOK && err == nil
		s.srv.rssPages += ps.rssPages
		s.srv.threads += ps.threads
	}
	s.metrics = scrapeMetrics(ctx, r.cfg.MetricsURL)
	return s
}

// measure samples, waits Dur and turns the difference into a Result.
func (r *runner) measure(ctx context.Context, n int, stepSubs []*subscriber) Result {
	a := r.sample(ctx, drainStart)
	if !a.drained {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%d subscribers: the server still had a backlog %s after "+
			"the window start: the window's count includes it", n, drainStart))
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.Dur):
	}
	b := r.sample(ctx, drainLate)
	res := r.result(n, a, b)
	res.ConnectP50Ms, res.ConnectP99Ms, res.FirstKeyframeP50Ms, res.FirstKeyframeP99Ms = subTimes(stepSubs)
	res.JitterMs = -1
	if r.sink == nil {
		res.JitterMs = r.jitter()
	}
	if over := float64(res.PacketsReceived)/float64(max(res.PacketsExpected, 1)) - 1; r.sink != nil && over > 0.001 {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("%d subscribers: the sink counted %.2f %% more media than "+
			"the publisher sent: the server sent extra media or was still behind at the window start", n, over*100))
	}
	return res
}

// receiveMode names how the bench received: "epoll" (blocking epoll_wait,
// woken per datagram), "poll" (-rx-poll) or "sink" (-sink).
func receiveMode(c *Config) string {
	switch {
	case c.Sink:
		return "sink"
	case c.RxPoll > 0:
		return "poll"
	}
	return "epoll"
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
		NACKsSent: d(ctrNACKs), LatencySamples: d(ctrStamps), PollSleeps: d(ctrPollSleeps),
		ReceiveMode: receiveMode(&r.cfg), RxPollUs: float64(r.cfg.RxPoll) / 1e3,
		ServerCPUPercent: -1, ServerCPUUsPerPacket: -1, ServerRSSMB: -1,
		FloorCPUUsPerPacket: -1, FloorEgressPPS: -1, FloorLossRatio: -1, ServerToFloorRatio: -1,
	}
	bytes := d(ctrBytes)
	if r.sink != nil {
		// Sink: the filter's media count against what the publisher sent to
		// each sink subscriber during the window; latency is not measured.
		sk := b.sink.sub(a.sink)
		res.PacketsReceived, bytes = sk[sinkMedia].Packets, sk[sinkMedia].Bytes
		// r.sunk is fixed for the window: sinkSubs waited until every
		// connected subscriber was switched before the window started,
		// and no other subscriber switches.
		res.PacketsExpected = res.PublisherPackets * uint64(r.sunk)
		res.SinkSubscribers = r.sunk
		res.SinkDrainMs = float64(b.drain) / 1e6
		res.SinkBehind = !b.drained
		r.cfg.Log("sink window: media %d, rtcp %d, stun %d, dtls %d, other %d; expected %d (%d sent × %d); "+
			"drained in %s at the start, %s at the end (settled %v)",
			sk[sinkMedia].Packets, sk[sinkRTCP].Packets, sk[sinkSTUN].Packets, sk[sinkDTLS].Packets,
			sk[sinkOther].Packets, res.PacketsExpected, res.PublisherPackets, r.sunk, a.drain, b.drain, b.drained)
	}
	res.LossRatio = lossRatio(res.PacketsReceived, res.PacketsExpected)
	res.EgressPPS = float64(res.PacketsReceived) / wall
	res.EgressMbps = float64(bytes) * 8 / wall / 1e6
	res.LatencyP50Ms, res.LatencyP99Ms = -1, -1
	if r.sink == nil {
		lat := histDiff(a.lat, b.lat)
		res.LatencyP50Ms, res.LatencyP99Ms = usToMs(histQuantile(lat, 0.5)), usToMs(histQuantile(lat, 0.99))
	}
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
	res.Nodes = r.nodeResults(&a, &b, wall)
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
