package node

import (
	"os"
	"runtime"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/tcpio"
)

// The Prometheus collectors behind /metrics on the API port (mux.go).

type metrics struct{ s *Server }

var (
	mStreams   = prometheus.NewDesc("srs_streams", "Live streams.", nil, nil)
	mClients   = prometheus.NewDesc("srs_clients", "Live WebRTC sessions.", nil, nil)
	mTotal     = prometheus.NewDesc("srs_clients_total", "WebRTC sessions created.", nil, nil)
	mRecv      = prometheus.NewDesc("srs_receive_bytes_total", "Bytes received on the media port.", nil, nil)
	mSend      = prometheus.NewDesc("srs_send_bytes_total", "Bytes sent on the media port.", nil, nil)
	mBuild     = prometheus.NewDesc("srs_build_info", "Build information.", []string{"version", "goversion"}, nil)
	mRxPkts    = prometheus.NewDesc("fanout_fastpath_rx_packets_total", "Datagrams received, per core.", []string{"core"}, nil)
	mTxPkts    = prometheus.NewDesc("fanout_fastpath_tx_packets_total", "Datagrams sent, per core.", []string{"core"}, nil)
	mRxBytes   = prometheus.NewDesc("fanout_fastpath_rx_bytes_total", "Bytes received, per core.", []string{"core"}, nil)
	mTxBytes   = prometheus.NewDesc("fanout_fastpath_tx_bytes_total", "Bytes sent, per core.", []string{"core"}, nil)
	mBatches   = prometheus.NewDesc("fanout_fastpath_batches_total", "recvmmsg batches, per core.", []string{"core"}, nil)
	mGSOSends  = prometheus.NewDesc("fanout_fastpath_gso_sends_total", "sendmmsg entries that carried a UDP_SEGMENT run, per core.", []string{"core"}, nil)
	mGSOSegs   = prometheus.NewDesc("fanout_fastpath_gso_segments_total", "Datagrams sent inside UDP_SEGMENT runs, per core.", []string{"core"}, nil)
	mRingIn    = prometheus.NewDesc("fanout_fastpath_ring_in_total", "Messages taken from other cores' rings, per core.", []string{"core"}, nil)
	mRingOver  = prometheus.NewDesc("fanout_fastpath_ring_overflows_total", "Messages a full ring refused, per producing core.", []string{"core"}, nil)
	mHandoffs  = prometheus.NewDesc("fanout_fastpath_handoffs_total", "Datagrams passed to their owning core, per landing core.", []string{"core"}, nil)
	mWakeups   = prometheus.NewDesc("fanout_fastpath_wakeups_total", "Wake-ups sent to sleeping peer cores, per core.", []string{"core"}, nil)
	mSleeps    = prometheus.NewDesc("fanout_fastpath_sleeps_total", "Times a core blocked with nothing to do, per core.", []string{"core"}, nil)
	mSTUNCore  = prometheus.NewDesc("fanout_fastpath_stun_answered_total", "Consent refreshes (STUN keepalives from a session's current address) answered on the core, per core.", []string{"core"}, nil)
	mSTUNInd   = prometheus.NewDesc("fanout_fastpath_stun_indications_total", "Binding indications from a session's address taken as keepalives on the core, per core.", []string{"core"}, nil)
	mFrameWait = prometheus.NewDesc("fanout_fastpath_frame_wait_expired_total", "Times a core stopped waiting for the rest of a video frame (frame_wait), per core.", []string{"core"}, nil)
	mDrops     = prometheus.NewDesc("fanout_fastpath_drops_total", "Datagrams dropped, per core and reason.", []string{"core", "reason"}, nil)
	mRTCP      = prometheus.NewDesc("fanout_fastpath_rtcp_total", "RTCP feedback, per core and kind.", []string{"core", "kind"}, nil)
	mSTUN      = prometheus.NewDesc("fanout_stun_bindings_total", "STUN binding requests answered (by control and on the fastpath cores).", nil, nil)
	mSTUNBad   = prometheus.NewDesc("fanout_stun_rejected_total", "STUN requests refused (integrity, fingerprint, unknown ufrag).", nil, nil)
	mTCPConns  = prometheus.NewDesc("fanout_tcp_connections", "Open WebRTC-over-TCP connections.", nil, nil)
	mTCPFrames = prometheus.NewDesc("fanout_tcp_frames_total", "RFC 4571 frames on WebRTC-over-TCP connections.", []string{"dir"}, nil)
	mTCPCloses = prometheus.NewDesc("fanout_tcp_closes_total", "WebRTC-over-TCP connections closed, by reason.", []string{"reason"}, nil)
	mTCPDrops  = prometheus.NewDesc("fanout_tcp_write_overflow_total", "Packets dropped because a TCP peer's output was full.", nil, nil)
	mTables    = prometheus.NewDesc("fanout_route_tables_published_total", "Route tables control published to the fastpath (changes coalesce under load).", nil, nil)
	mSessEnds  = prometheus.NewDesc("fanout_sessions_ended_total", "WebRTC sessions ended.", nil, nil)
	mQueueDrop = prometheus.NewDesc("fanout_queue_drops_total", "Items bounded queues a remote peer can fill dropped, by queue (README \"Limits\").", []string{"queue"}, nil)
	mLimits    = prometheus.NewDesc("fanout_limit_refusals_total", "Requests and connections refused over a limit (429 rate, 503 capacity, 413 size, 431 header size; HTTP connections cut by a timeout; WebRTC-over-TCP and RTMP connections closed at accept, session address moves refused), by limit.", []string{"limit"}, nil)
	mRefused   = prometheus.NewDesc("fanout_http_refusals_total", "4xx/5xx answers to WHIP/WHEP/legacy/API requests, by status (each also logged once).", []string{"status"}, nil)
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counts, live := m.s.ctl.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(mStreams, float64(len(m.s.ctl.Streams())))
	gauge(mClients, float64(live))
	gauge(mBuild, 1, "1.0.0", runtime.Version())
	counter(mTotal, counts.SessionsCreated)
	counter(mSessEnds, counts.SessionsEnded)
	counter(mTables, counts.TablesPublished)
	for status, n := range m.s.ctl.RefusalsByStatus() {
		counter(mRefused, n, strconv.Itoa(status))
	}
	m.limits(counter)
	total := m.s.fp.Stats()
	counter(mSTUN, counts.STUNBindings+total.STUNAnswered) // control's and the cores'
	counter(mSTUNBad, counts.STUNRejected)
	if t := m.s.tcpSrv; t != nil {
		ts := t.Stats()
		gauge(mTCPConns, float64(ts.ConnsOpen))
		counter(mTCPFrames, ts.FramesIn, "in")
		counter(mTCPFrames, ts.FramesOut, "out")
		counter(mTCPDrops, ts.WriteOverflow)
		for r, n := range ts.Closes {
			counter(mTCPCloses, n, tcpio.CloseReasonName(uint8(r)))
		}
	}
	counter(mRecv, total.RxBytes)
	counter(mSend, total.TxBytes)
	for i, cs := range m.s.fp.CoreStats() {
		core := strconv.Itoa(i)
		counter(mRxPkts, cs.RxPackets, core)
		counter(mTxPkts, cs.TxPackets, core)
		counter(mRxBytes, cs.RxBytes, core)
		counter(mTxBytes, cs.TxBytes, core)
		counter(mBatches, cs.Batches, core)
		counter(mGSOSends, cs.GSOSends, core)
		counter(mGSOSegs, cs.GSOSegments, core)
		counter(mRingIn, cs.RingIn, core)
		counter(mRingOver, cs.RingOverflows, core)
		counter(mHandoffs, cs.Handoffs, core)
		counter(mWakeups, cs.Wakeups, core)
		counter(mSleeps, cs.Sleeps, core)
		counter(mFrameWait, cs.FrameWaitExpired, core)
		counter(mSTUNCore, cs.STUNAnswered, core)
		counter(mSTUNInd, cs.STUNIndications, core)
		for r, n := range cs.Drops {
			counter(mDrops, n, core, fastpath.DropReasonNames[r])
		}
		counter(mRTCP, cs.PLIIn, core, "pli_in")
		counter(mRTCP, cs.FIRIn, core, "fir_in")
		counter(mRTCP, cs.NACKIn, core, "nack_in")
		counter(mRTCP, cs.PLIOut, core, "pli_out")
		counter(mRTCP, cs.NACKOut, core, "nack_out")
		counter(mRTCP, cs.NACKServed, core, "nack_served")
		counter(mRTCP, cs.NACKMissed, core, "nack_missed")
		counter(mRTCP, cs.TWCCOut, core, "twcc_out")
		counter(mRTCP, cs.TWCCIn, core, "twcc_in")
		counter(mRTCP, cs.PaddingDrops, core, "simulcast_padding_drops")
		counter(mRTCP, cs.RROut, core, "rr_out")
		counter(mRTCP, cs.SROut, core, "sr_out")
		counter(mRTCP, cs.GOPReplays, core, "gop_replays")
		counter(mRTCP, cs.GOPSkipped, core, "gop_replays_skipped")
		counter(mRTCP, cs.LayersLearnt, core, "simulcast_layers_learnt")
		counter(mRTCP, cs.LayerSwitches, core, "simulcast_layer_switches")
		counter(mRTCP, cs.TemporalDrops, core, "svc_temporal_drops")
		counter(mRTCP, cs.DDInvalid, core, "svc_av1_dd_invalid")
		counter(mRTCP, cs.GOPTooOld, core, "gop_replays_too_old")
		counter(mRTCP, cs.GOPFallbacks, core, "gop_replay_fallbacks")
		counter(mRTCP, cs.GOPReplayed, core, "gop_replayed_packets")
		counter(mRTCP, cs.GOPPaced, core, "gop_replay_paced")
		counter(mRTCP, cs.GOPFirstRepeats, core, "gop_replay_first_repeats")
		counter(mRTCP, cs.ResendSuppressed, core, "nack_resend_suppressed")
		counter(mRTCP, cs.ResendPaced, core, "nack_resend_paced")
		counter(mRTCP, cs.ResendForced, core, "nack_resend_forced")
	}
}

// limits exports fanout_limit_refusals_total: the HTTP layer's and the
// registry's refusals, net/http's own (httpLimit), the RTMP listeners' and
// the TCP transport's per-IP closes.
func (m *metrics) limits(counter func(*prometheus.Desc, uint64, ...string)) {
	refusals := m.s.ctl.LimitRefusals()
	if l := m.s.rtmpLimit; l != nil {
		for limit, n := range l.refusals() {
			refusals[limit] += n
		}
	}
	for limit, n := range m.s.httpLimit.refusals() {
		refusals[limit] += n
	}
	for limit, n := range refusals {
		counter(mLimits, n, limit)
	}
	if t := m.s.tcpSrv; t != nil {
		counter(mLimits, t.Stats().Closes[tcpio.CloseIPLimit], "tcp_connections_per_ip")
	}
	counter(mQueueDrop, m.s.ctl.DTLSQueueDrops(), "dtls_records")
	if m.s.sig != nil {
		rs := m.s.sig.Stats()
		counter(mQueueDrop, rs.DroppedSlow, "signaling_clients")
		counter(mLimits, rs.Rejected, "signaling_connections")
	}
	if b := m.s.link.b; b != nil {
		d := b.Hub().Drops()
		counter(mQueueDrop, d.Inbox, "hub_inbox")
		counter(mQueueDrop, d.Readers, "hub_readers")
	}
}

// summary is the fastpath and process part of /api/v1/summaries.
func (s *Server) summary() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cores := s.fp.CoreStats()
	return map[string]any{
		"self": map[string]any{
			"pid": os.Getpid(), "mem_kbyte": ms.Sys / 1024, "goroutines": runtime.NumGoroutine(),
		},
		"fastpath": map[string]any{"cores": len(cores), "per_core": cores, "total": s.fp.Stats()},
		"bridge":   s.fp.BridgeStats(),
	}
}

var mBridge = prometheus.NewDesc("fanout_bridge_packets_total",
	"Packets through the fastpath's bridge doors: injected (rtmp_to_rtc), tapped (rtc_to_rtmp), their drops, keyframe requests.",
	[]string{"kind"}, nil)

// bridgeMetrics exports fastpath.BridgeStats on /metrics.
type bridgeMetrics struct{ s *Server }

func (m bridgeMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- mBridge }

func (m bridgeMetrics) Collect(ch chan<- prometheus.Metric) {
	bs := m.s.fp.BridgeStats()
	for _, c := range []struct {
		kind string
		n    uint64
	}{{"injected", bs.Injected}, {"inject_dropped", bs.InjectDropped}, {"keyframe_requests", bs.KeyframeReqs},
		{"tapped", bs.Tapped}, {"tap_dropped", bs.TapDropped}} {
		ch <- prometheus.MustNewConstMetric(mBridge, prometheus.CounterValue, float64(c.n), c.kind)
	}
}

var (
	mClusterErrors    = prometheus.NewDesc("fanout_cluster_registry_errors_total", "Cluster registry (Redis) calls that failed.", nil, nil)
	mClusterClaims    = prometheus.NewDesc("fanout_cluster_claims_total", "Streams this node claimed in the cluster registry.", nil, nil)
	mClusterConflicts = prometheus.NewDesc("fanout_cluster_claim_conflicts_total", "Claims lost because another node owns the stream.", nil, nil)
	mClusterReleases  = prometheus.NewDesc("fanout_cluster_releases_total", "Streams this node released (their publisher left).", nil, nil)
	mClusterRebuilds  = prometheus.NewDesc("fanout_cluster_rebuilds_total", "Times this node rebuilt its registry keys after an outage.", nil, nil)
	mClusterRedirects = prometheus.NewDesc("fanout_cluster_redirects_total", "Offers answered 307 to another node, by kind (publish: to the owner; play: off a full node).", []string{"kind"}, nil)
	mClusterNodes     = prometheus.NewDesc("fanout_cluster_nodes", "Live nodes the last registry sweep saw, this one included.", nil, nil)
	mClusterHealthy   = prometheus.NewDesc("fanout_cluster_registry_up", "1 when the last cluster registry call succeeded.", nil, nil)
)

// clusterMetrics exports the cluster member's counters (cluster on only).
type clusterMetrics struct{ c *clusterLink }

func (m clusterMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	mem := m.c.member.Load()
	if mem == nil {
		return
	}
	n := mem.Counters()
	for _, c := range []struct {
		d *prometheus.Desc
		v uint64
	}{{mClusterErrors, n.Errors}, {mClusterClaims, n.Claims}, {mClusterConflicts, n.Conflicts},
		{mClusterReleases, n.Releases}, {mClusterRebuilds, n.Rebuilds}} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
	}
	ch <- prometheus.MustNewConstMetric(mClusterRedirects, prometheus.CounterValue, float64(m.c.redirects[0].Load()), "publish")
	ch <- prometheus.MustNewConstMetric(mClusterRedirects, prometheus.CounterValue, float64(m.c.redirects[1].Load()), "play")
	ch <- prometheus.MustNewConstMetric(mClusterNodes, prometheus.GaugeValue, float64(mem.NodesSeen()))
	up := 0.0
	if mem.Healthy() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(mClusterHealthy, prometheus.GaugeValue, up)
}
