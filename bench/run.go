package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Config is a whole bench run; cmd/fanout-bench fills it from flags.
type Config struct {
	WHIP, WHEP, Token string
	// WHEPs lists several nodes' WHEP URLs; subscribers are spread over
	// them round-robin and reported per node (nodes.go). Empty: WHEP alone.
	WHEPs         []string
	Mode          string // fixed, ramp, sweep, floor
	Subs          int
	Steps         []int // sweep
	RampStart     int
	RampStep      int
	RampMax       int
	LossThreshold float64
	Bitrate       int
	PktSize       int
	Dur           time.Duration
	Warmup        time.Duration
	ServerPID     int
	// ServerPIDs are the nodes' processes, in WHEPs' order, then nodes
	// without players; their CPU is summed into the server figures and
	// reported per node. Empty: ServerPID alone.
	ServerPIDs        []int
	MetricsURL        string
	ServerCPUs        []int
	BenchCPUs         []int
	Readers           int
	VerifyEvery       int
	NACK              bool
	Floor             bool
	Concurrency       int
	ConnectTimeout    time.Duration
	Local             netip.Addr
	Candidate         netip.AddrPort
	NoPublisher       bool
	H264File, OggFile string
	RcvBuf            int
	// RxPoll > 0 makes the receive loops (and the floor's) poll: epoll_wait
	// with timeout 0, and a sleep of RxPoll after a round that found nothing,
	// instead of blocking in epoll_wait and being woken for every datagram.
	RxPoll time.Duration
	// Sink switches each subscriber, as soon as it is connected and past its
	// first keyframe (or at the end of its step without one), to an eBPF
	// socket filter that counts and drops its media (capacity mode; see
	// sink_linux.go).
	Sink bool
	Log  func(format string, args ...any)
}

// maxRxPoll bounds -rx-poll: the blocking loop wakes every 50 ms anyway, and
// a longer sleep only fills socket buffers and delays keepalives.
const maxRxPoll = 50 * time.Millisecond

// Validate checks the settings that are wrong whatever the server is; Run
// calls it, and cmd/fanout-bench calls it to reject flags before starting.
func (c *Config) Validate() error {
	switch c.Mode {
	case "", "fixed", "ramp", "sweep", "floor":
	default:
		return fmt.Errorf("%w: -mode %q: want fixed, ramp, sweep or floor", ErrConfig, c.Mode)
	}
	if c.RxPoll < 0 || c.RxPoll > maxRxPoll {
		return fmt.Errorf("%w: -rx-poll %s: want 0 (block in epoll_wait) up to %s", ErrConfig, c.RxPoll, maxRxPoll)
	}
	if c.LossThreshold < 0 || c.LossThreshold >= 1 {
		return fmt.Errorf("%w: -loss-threshold %g: want a ratio in [0, 1)", ErrConfig, c.LossThreshold)
	}
	if !c.Sink || c.Mode == "floor" {
		return nil
	}
	switch {
	case c.NoPublisher:
		return fmt.Errorf("%w: -sink counts loss against the publisher's packets: not with -no-publish", ErrConfig)
	case c.H264File != "":
		return fmt.Errorf("%w: -sink needs the synthetic publisher, whose packet count is exact: not with -h264/-ffmpeg", ErrConfig)
	case c.NACK:
		return fmt.Errorf("%w: -sink reads no media, so it sends no NACKs: drop -nack", ErrConfig)
	}
	return nil
}

func (c *Config) defaults() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Mode == "" {
		c.Mode = "fixed"
	}
	if c.Bitrate <= 0 {
		c.Bitrate = 1_000_000
	}
	if c.PktSize <= 0 {
		c.PktSize = 1200
	}
	if c.Dur <= 0 {
		c.Dur = 10 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Readers <= 0 {
		c.Readers = 1
	}
	if c.VerifyEvery <= 0 {
		c.VerifyEvery = 16
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if !c.Local.IsValid() {
		c.Local = netip.MustParseAddr("127.0.0.1")
	}
	if c.RcvBuf <= 0 {
		c.RcvBuf = 1 << 20
	}
	if c.LossThreshold <= 0 {
		c.LossThreshold = 0.01
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	c.nodeDefaults()
	if c.Mode != "floor" && c.WHEP == "" {
		return fmt.Errorf("%w: -whep is required", ErrConfig)
	}
	if c.Mode != "floor" && !c.NoPublisher && c.WHIP == "" {
		return fmt.Errorf("%w: -whip is required (or -no-publish)", ErrConfig)
	}
	return nil
}

// stepSizes returns the subscriber counts of each measured window.
func (c *Config) stepSizes() []int {
	switch c.Mode {
	case "ramp":
		start, step, limit := max(c.RampStart, 1), max(c.RampStep, 1), max(c.RampMax, 1)
		var out []int
		for n := start; n <= limit; n += step {
			out = append(out, n)
		}
		return out
	case "sweep":
		out := slices.Clone(c.Steps)
		slices.Sort(out)
		return out
	}
	return []int{max(c.Subs, 1)}
}

// runner holds the live state of one run.
type runner struct {
	cfg      Config
	readers  []*reader
	conn     *connector   // conns[0]: its HTTP client is shared by all
	conns    []*connector // one per WHEP URL
	subs     []*subscriber
	fails    int
	pub      *Publisher
	sink     *sink // -sink
	sunk     int   // subscribers on the sink, counted by sinkSubs once all connected ones are: fixed for the window
	sunkNode []int // the same per node
	rep      Report
}

// Run executes cfg and returns the report; every goroutine, socket and
// session it started is gone when it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(cfg.BenchCPUs) > 0 {
		if err := pinProcess(0, cfg.BenchCPUs); err != nil {
			return nil, err
		}
	}
	for _, pid := range cfg.ServerPIDs {
		if len(cfg.ServerCPUs) == 0 {
			break
		}
		if err := pinProcess(pid, cfg.ServerCPUs); err != nil {
			return nil, err
		}
	}
	if cfg.Mode == "floor" {
		fr, err := runFloor(ctx, floorConfig(&cfg, max(cfg.Subs, 1)))
		if err != nil {
			return nil, err
		}
		rep := &Report{Result: fr.asResult(&cfg)}
		return rep, nil
	}
	r := &runner{cfg: cfg}
	defer r.teardown()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.steps(ctx); err != nil {
		return &r.rep, err
	}
	return &r.rep, nil
}

func (r *runner) setup(ctx context.Context) error {
	cfg := &r.cfg
	var err error
	if cfg.Sink {
		if r.sink, err = newNodeSink(len(cfg.WHEPs)); err != nil {
			return err
		}
	}
	id, err := newIdentity()
	if err != nil {
		return err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency * 2}
	hc := &http.Client{Transport: tr, Timeout: cfg.ConnectTimeout}
	for _, whep := range cfg.WHEPs {
		r.conns = append(r.conns, &connector{id: id, hc: hc, whep: whep, token: cfg.Token, local: cfg.Local,
			rcvbuf: cfg.RcvBuf, timeout: cfg.ConnectTimeout, cand: cfg.Candidate})
	}
	r.conn = r.conns[0]
	total := slices.Max(cfg.stepSizes())
	for i := range cfg.Readers {
		rd, err := newReader(readerConfig{capacity: total/cfg.Readers + 2, verifyEvery: cfg.VerifyEvery,
			nack: cfg.NACK, cpus: cfg.BenchCPUs, poll: cfg.RxPoll, sink: r.sink, node: i % len(cfg.WHEPs)})
		if err != nil {
			return err
		}
		r.readers = append(r.readers, rd)
		rd.start()
	}
	if !cfg.NoPublisher {
		cfg.Log("publishing to %s at %d bps", cfg.WHIP, cfg.Bitrate)
		r.pub, err = StartPublisher(ctx, PublisherConfig{WHIP: cfg.WHIP, Token: cfg.Token,
			Bitrate: cfg.Bitrate, PktSize: cfg.PktSize, H264File: cfg.H264File, OggFile: cfg.OggFile})
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	return nil
}

// steps grows the subscriber set through each step size and measures.
func (r *runner) steps(ctx context.Context) error {
	cfg := &r.cfg
	sizes := cfg.stepSizes()
	for _, n := range sizes {
		first := len(r.subs)
		cfg.Log("connecting subscribers %d..%d", first+1, n)
		r.addSubs(ctx, n-len(r.subs))
		r.warmup(ctx, r.subs[first:])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.sink != nil {
			if err := r.sinkSubs(ctx, r.subs[first:]); err != nil {
				return err
			}
		}
		cfg.Log("measuring %d subscribers for %s", n, cfg.Dur)
		res := r.measure(ctx, n, r.subs[first:])
		if cfg.Floor {
			if r.pub != nil {
				r.pub.Pause(true)
			}
			fr, err := runFloor(ctx, floorConfig(cfg, max(res.SubscribersConnected, 1)))
			if err != nil {
				r.rep.Errors = append(r.rep.Errors, err.Error())
			} else {
				fr.apply(&res)
			}
			if r.pub != nil {
				r.pub.Pause(false)
			}
		}
		r.rep.Steps = append(r.rep.Steps, res)
		r.rep.Result = res
		cfg.Log("%d subs: loss %.4f, egress %.0f pps, server cpu %.1f%%", n, res.LossRatio, res.EgressPPS, res.ServerCPUPercent)
		if cfg.Mode == "ramp" {
			if stop := rampStop(&res, n, cfg.LossThreshold); stop != "" {
				r.rep.RampStopReason = stop
				break
			}
			r.rep.RampMaxSubscribers = n
		}
	}
	if cfg.Mode == "fixed" {
		r.rep.Steps = nil
	}
	if cfg.Mode == "ramp" {
		r.rep.LossThreshold = cfg.LossThreshold
		if r.rep.RampStopReason == "" {
			r.rep.RampStopReason = fmt.Sprintf("reached -ramp-max %d without exceeding the threshold", cfg.RampMax)
		}
		for _, s := range r.rep.Steps {
			if s.SubscribersRequested == r.rep.RampMaxSubscribers {
				r.rep.Result = s
				r.rep.RampMaxEgressPPS = s.EgressPPS
			}
		}
	}
	return nil
}

// rampStop says why a ramp step ends the ramp, or "" when it passed.
func rampStop(res *Result, n int, threshold float64) string {
	if res.SubscribersConnected < n {
		return fmt.Sprintf("%d subscribers: only %d connected", n, res.SubscribersConnected)
	}
	if res.LossRatio > threshold {
		return fmt.Sprintf("%d subscribers: loss %.3f %% > %.3f %%", n, res.LossRatio*100, threshold*100)
	}
	if res.SinkBehind {
		// What is later than that counts as lost, but a server that ran
		// behind may also resend (keyframe caches), which hides it.
		return fmt.Sprintf("%d subscribers: the server ran more than %s behind (media still arriving after the window end)",
			n, drainLate)
	}
	return ""
}

// sinkSubs makes sure every connected subscriber of the step is on the sink
// before the window starts. The readers switch each one as soon as it is
// connected and has seen its first keyframe (reader.toSink: the filter
// first, then out of the epoll set, so no datagram is counted twice or
// lost), which frees them from reading a connect storm's media in user
// space; the ones that saw no keyframe during the warm-up are switched now,
// by their reader at its next sweep, and sinkSubs waits for them. The
// window's expected count is then publisher packets × r.sunk, every one of
// them counted by the filter for the whole window. Their reader keeps
// sending their keepalives.
func (r *runner) sinkSubs(ctx context.Context, subs []*subscriber) error {
	var pending []*subscriber
	for _, s := range subs {
		if s.connected.Load() != 0 && !s.sunk.Load() {
			s.sinkNow.Store(true)
			pending = append(pending, s)
		}
	}
	late := len(pending)
	for {
		for _, rd := range r.readers {
			if err := rd.switchError(); err != nil {
				return err
			}
		}
		pending = slices.DeleteFunc(pending, func(s *subscriber) bool { return s.sunk.Load() })
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(sweepEvery):
		}
	}
	r.countSunk()
	r.cfg.Log("sink: %d subscribers counted by the socket filter (%d of this step had no keyframe by the end of the warm-up)",
		r.sunk, late)
	return nil
}

// addSubs connects n more subscribers, Concurrency at a time.
func (r *runner) addSubs(ctx context.Context, n int) {
	if n <= 0 {
		return
	}
	base := len(r.subs)
	batch := make([]*subscriber, n)
	for i := range batch {
		batch[i] = &subscriber{id: base + i, node: r.cfg.nodeOf(base + i), fd: -1}
	}
	r.subs = append(r.subs, batch...)
	start, failsBefore := time.Now(), r.fails
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, s := range batch {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := r.conns[s.node].connect(ctx, s, r.readerFor(s)); err != nil {
				mu.Lock()
				r.fails++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r.cfg.Log("connect: %d subscribers in %s (%.0f/s), %d failed", n, took.Round(time.Millisecond),
		float64(n)/took.Seconds(), r.fails-failsBefore)
	if firstErr != nil {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("connect: %v", firstErr))
		r.cfg.Log("connect failures: %d (first: %v)", r.fails, firstErr)
	}
}

// warmup waits until every connected subscriber of the step saw a keyframe,
// or Warmup passes (at least one second, so steady state is measured).
func (r *runner) warmup(ctx context.Context, subs []*subscriber) {
	deadline := time.Now().Add(r.cfg.Warmup)
	minEnd := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		waiting := 0
		for _, s := range subs {
			if s.connected.Load() != 0 && s.firstKeyframe.Load() == 0 {
				waiting++
			}
		}
		if waiting == 0 && time.Now().After(minEnd) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// teardown stops publishers and readers, closes sockets and deletes the
// WHEP sessions.
func (r *runner) teardown() {
	if r.pub != nil {
		r.pub.Close()
	}
	for _, rd := range r.readers {
		rd.close()
	}
	closeSubs(r.subs)
	if r.sink != nil {
		r.sink.close()
	}
	if r.conn == nil {
		return
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, s := range r.subs {
		if s.resource == "" {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			deleteResource(r.conn.hc, s.resource, r.cfg.Token)
		}()
	}
	wg.Wait()
	r.conn.hc.CloseIdleConnections()
}

// serverName is the host:port of the WHEP URL, for the report.
func serverName(whep string) string {
	if u, err := url.Parse(whep); err == nil {
		return u.Host
	}
	return whep
}

func msQuantiles(vals []float64) (p50, p99 float64) {
	if len(vals) == 0 {
		return -1, -1
	}
	slices.Sort(vals)
	q := func(f float64) float64 { return vals[int(math.Ceil(f*float64(len(vals))))-1] }
	return q(0.5), q(0.99)
}
