package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Result is one measured window. The JSON names are a contract: other tools
// (CI, the lead's comparison scripts) read them. -1 means "not available"
// (no -server-pid, no stamped payloads, no keyframe seen).
type Result struct {
	Mode                  string  `json:"mode"`
	Server                string  `json:"server"`
	SubscribersRequested  int     `json:"subscribers_requested"`
	SubscribersConnected  int     `json:"subscribers_connected"`
	ConnectFailures       int     `json:"connect_failures"`
	DurationS             float64 `json:"duration_s"`
	BitrateBPS            int     `json:"bitrate_bps"`
	PacketsReceived       uint64  `json:"packets_received"`
	PacketsExpected       uint64  `json:"packets_expected"`
	LossRatio             float64 `json:"loss_ratio"`
	SeqGaps               uint64  `json:"seq_gaps"`
	OutOfOrder            uint64  `json:"out_of_order"`
	EgressPPS             float64 `json:"egress_pps"`
	EgressMbps            float64 `json:"egress_mbps"`
	PublisherPackets      uint64  `json:"publisher_packets"`
	ServerCPUPercent      float64 `json:"server_cpu_percent"`
	ServerCPUUsPerPacket  float64 `json:"server_cpu_us_per_egress_packet"`
	ServerRSSMB           float64 `json:"server_rss_mb"`
	ServerThreads         int     `json:"server_threads"`
	LatencyP50Ms          float64 `json:"latency_p50_ms"`
	LatencyP99Ms          float64 `json:"latency_p99_ms"`
	LatencySamples        uint64  `json:"latency_samples"`
	JitterMs              float64 `json:"jitter_ms"`
	ConnectP50Ms          float64 `json:"connect_p50_ms"`
	ConnectP99Ms          float64 `json:"connect_p99_ms"`
	FirstKeyframeP50Ms    float64 `json:"first_keyframe_p50_ms"`
	FirstKeyframeP99Ms    float64 `json:"first_keyframe_p99_ms"`
	BenchCPUUsPerPacket   float64 `json:"bench_cpu_us_per_packet"`
	BenchReaderCPUPercent float64 `json:"bench_reader_cpu_percent"`
	BenchProcessCPUPct    float64 `json:"bench_process_cpu_percent"`
	SRTPVerified          uint64  `json:"srtp_verified"`
	SRTPAuthFailures      uint64  `json:"srtp_auth_failures"`
	RecvSyscalls          uint64  `json:"recv_syscalls"`
	NACKsSent             uint64  `json:"nacks_sent"`
	// ReceiveMode is how the bench (and its floor) received: "epoll"
	// (blocking epoll_wait, one wake-up per datagram or so), "poll"
	// (-rx-poll: epoll_wait(0), sleep RxPollUs when a round found nothing)
	// or "sink" (-sink: an eBPF filter counts and drops media after the first keyframe).
	ReceiveMode     string  `json:"receive_mode"`
	RxPollUs        float64 `json:"rx_poll_us"`
	PollSleeps      uint64  `json:"rx_poll_sleeps"`
	SinkSubscribers int     `json:"sink_subscribers,omitempty"` // subscribers whose media the filter counts
	// SinkDrainMs is how long after the window's last publisher packet the
	// server still delivered media (its backlog); above 100 ms the rest
	// counts as lost.
	SinkDrainMs float64 `json:"sink_drain_ms,omitempty"`
	SinkBehind  bool    `json:"sink_behind,omitempty"` // still delivering 100 ms after the window end

	FloorCPUUsPerPacket float64 `json:"floor_cpu_us_per_packet"`
	FloorEgressPPS      float64 `json:"floor_egress_pps"`
	FloorLossRatio      float64 `json:"floor_loss_ratio"`
	ServerToFloorRatio  float64 `json:"server_to_floor_cpu_ratio"`

	ServerMetrics map[string]float64 `json:"server_metrics,omitempty"`

	// Nodes splits the window by node when the bench played from several
	// WHEP URLs or accounted several server processes (nodes.go).
	Nodes []NodeResult `json:"nodes,omitempty"`
}

// Report is the whole output of a run.
type Report struct {
	Result
	RampMaxSubscribers int      `json:"ramp_max_subscribers,omitempty"`
	RampMaxEgressPPS   float64  `json:"ramp_max_egress_pps,omitempty"` // egress pps of that step
	RampStopReason     string   `json:"ramp_stop_reason,omitempty"`
	LossThreshold      float64  `json:"loss_threshold,omitempty"` // ramp
	Steps              []Result `json:"steps,omitempty"`
	Machine            *Machine `json:"machine,omitempty"`
	Command            string   `json:"command,omitempty"`
	Errors             []string `json:"errors,omitempty"`
}

func na(v float64, format string) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// WriteTable prints a readable summary: one row per step.
func (r *Report) WriteTable(w io.Writer) {
	rows := r.Steps
	if len(rows) == 0 {
		rows = []Result{r.Result}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subs\tconn\tloss%\tegress pps\tsrv cpu%\tsrv µs/pkt\tfloor µs/pkt\tsrv/floor\tbench µs/pkt\tlat p50 ms\tlat p99 ms\tconn p99 ms\tkf p99 ms\t")
	for _, s := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%.3f\t%.0f\t%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t\n",
			s.SubscribersRequested, s.SubscribersConnected, s.LossRatio*100, s.EgressPPS,
			na(s.ServerCPUPercent, "%.1f"), na(s.ServerCPUUsPerPacket, "%.3f"),
			na(s.FloorCPUUsPerPacket, "%.3f"), na(s.ServerToFloorRatio, "%.2f"),
			s.BenchCPUUsPerPacket, na(s.LatencyP50Ms, "%.2f"), na(s.LatencyP99Ms, "%.2f"),
			na(s.ConnectP99Ms, "%.1f"), na(s.FirstKeyframeP99Ms, "%.1f"))
	}
	tw.Flush()
	writeNodes(w, rows)
	if len(rows) > 0 {
		fmt.Fprintf(w, "receive: %s\n", receiveDoc(&rows[0]))
		if rows[0].ReceiveMode == "sink" {
			fmt.Fprint(w, "sink: server backlog drained after the window end (ms, > 100 counts as lost):")
			for _, s := range rows {
				fmt.Fprintf(w, " %d:%.0f", s.SubscribersRequested, s.SinkDrainMs)
			}
			fmt.Fprintln(w)
		}
	}
	if line := r.rampLine(); line != "" {
		fmt.Fprintf(w, "ramp: %s\n", line)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "note: %s\n", e)
	}
}

// receiveDoc says in a few words how the bench received.
func receiveDoc(r *Result) string {
	switch r.ReceiveMode {
	case "poll":
		return fmt.Sprintf("poll (-rx-poll %gµs: epoll_wait(0), sleep after an empty round; latency includes up to that)", r.RxPollUs)
	case "sink":
		return "sink (eBPF socket filter counts and drops media after the first keyframe; latency and jitter not measured)"
	}
	return "epoll (blocking epoll_wait: the server's sends wake the bench's reader)"
}

// rampLine states the ramp's capacity, or "" outside ramp mode.
func (r *Report) rampLine() string {
	if r.Mode != "ramp" || len(r.Steps) == 0 {
		return ""
	}
	th := fmt.Sprintf("loss ≤ %.3f %%", r.LossThreshold*100)
	if r.RampMaxSubscribers == 0 {
		return fmt.Sprintf("no step within %s; stopped at %s", th, r.RampStopReason)
	}
	return fmt.Sprintf("capacity within %s: %d subscribers, %.0f egress pps (last step under the threshold); stopped at %s",
		th, r.RampMaxSubscribers, r.RampMaxEgressPPS, r.RampStopReason)
}

// markdownTable renders rows as a Markdown table.
func markdownTable(rows []Result) string {
	var b strings.Builder
	b.WriteString("| subs | connected | loss % | egress pps | server CPU % | server µs/pkt | floor µs/pkt | server/floor | bench µs/pkt | latency p50/p99 ms | jitter ms | connect p99 ms | first keyframe p99 ms | server RSS MB |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range rows {
		fmt.Fprintf(&b, "| %d | %d | %.3f | %.0f | %s | %s | %s | %s | %.3f | %s / %s | %s | %s | %s | %s |\n",
			s.SubscribersRequested, s.SubscribersConnected, s.LossRatio*100, s.EgressPPS,
			na(s.ServerCPUPercent, "%.1f"), na(s.ServerCPUUsPerPacket, "%.3f"),
			na(s.FloorCPUUsPerPacket, "%.3f"), na(s.ServerToFloorRatio, "%.2f"),
			s.BenchCPUUsPerPacket, na(s.LatencyP50Ms, "%.2f"), na(s.LatencyP99Ms, "%.2f"), na(s.JitterMs, "%.2f"),
			na(s.ConnectP99Ms, "%.1f"), na(s.FirstKeyframeP99Ms, "%.1f"), na(s.ServerRSSMB, "%.1f"))
	}
	return b.String()
}
