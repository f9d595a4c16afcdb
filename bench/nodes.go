package bench

import (
	"fmt"
	"io"
	"strings"
)

// Several nodes: -whep takes a list of WHEP URLs, one per node of a cluster
// (Fanout's origin and edges), and the subscribers are spread over them
// round-robin (subscriber i plays from node i mod len(WHEPs)); the publisher
// publishes to -whip, one node. -server-pid takes the nodes' process ids in
// the same order; ids beyond the URLs are nodes without players (an origin
// that only feeds edges), measured for CPU alone. Each node then has its own
// receive loops (reader i serves node i mod len(WHEPs)) and, with -sink, its
// own counters in the sink's map, so the report gives each node's egress
// packets, loss, CPU and CPU per egress packet beside the totals.

// NodeResult is one node's share of a measured window (JSON names are a
// contract, as Result's). -1 means not available.
type NodeResult struct {
	Node                 int     `json:"node"` // index in -whep / -server-pid
	WHEP                 string  `json:"whep,omitempty"`
	Server               string  `json:"server,omitempty"`
	PID                  int     `json:"pid,omitempty"`
	SubscribersConnected int     `json:"subscribers_connected"`
	PacketsReceived      uint64  `json:"packets_received"`
	PacketsExpected      uint64  `json:"packets_expected"`
	LossRatio            float64 `json:"loss_ratio"`
	EgressPPS            float64 `json:"egress_pps"`
	ServerCPUPercent     float64 `json:"server_cpu_percent"`
	ServerCPUUsPerPacket float64 `json:"server_cpu_us_per_egress_packet"`
}

// nodeDefaults reconciles the single-node and list forms of the server
// settings: WHEP is WHEPs[0] and ServerPID ServerPIDs[0], and there are
// as many readers per node as the others have.
func (c *Config) nodeDefaults() {
	if len(c.WHEPs) == 0 && c.WHEP != "" {
		c.WHEPs = []string{c.WHEP}
	}
	if len(c.WHEPs) > 0 {
		c.WHEP = c.WHEPs[0]
	}
	if len(c.ServerPIDs) == 0 && c.ServerPID > 0 {
		c.ServerPIDs = []int{c.ServerPID}
	}
	if len(c.ServerPIDs) > 0 {
		c.ServerPID = c.ServerPIDs[0]
	}
	if n := len(c.WHEPs); n > 1 {
		c.Readers = (c.Readers + n - 1) / n * n
	}
}

// nodeCount is how many nodes the report accounts: with players or with a
// process id.
func (c *Config) nodeCount() int { return max(len(c.WHEPs), len(c.ServerPIDs), 1) }

// multiNode reports whether per-node figures are reported.
func (c *Config) multiNode() bool { return c.nodeCount() > 1 }

// nodeOf is the node subscriber id plays from.
func (c *Config) nodeOf(id int) int { return id % max(len(c.WHEPs), 1) }

// readerFor picks the receive loop of subscriber s: one of its node's
// readers (reader i serves node i mod len(WHEPs)), round-robin among them.
func (r *runner) readerFor(s *subscriber) *reader {
	n := max(len(r.cfg.WHEPs), 1)
	per := max(len(r.readers)/n, 1)
	return r.readers[(s.node+n*((s.id/n)%per))%len(r.readers)]
}

// sampleNodes reads the per-node counters at a window edge (inside the
// sample's edge, beside the totals).
func (r *runner) sampleNodes(s *sample) {
	if !r.cfg.multiNode() {
		return
	}
	n := r.cfg.nodeCount()
	s.nodeCtr = make([][nCounters]uint64, n)
	s.nodeSink = make([]sinkCounts, n)
	s.nodeCPU = make([]uint64, n)
	s.nodeCPUOK = make([]bool, n)
	for _, rd := range r.readers {
		c := rd.snapshot()
		for k := range c {
			s.nodeCtr[rd.node][k] += c[k]
		}
	}
	if r.sink != nil {
		for k := range r.cfg.WHEPs {
			s.nodeSink[k], _ = r.sink.snapshotNode(k)
		}
	}
	for k, pid := range r.cfg.ServerPIDs {
		us, err := processCPUMicros(pid)
		s.nodeCPU[k], s.nodeCPUOK[k] = us, err == nil
	}
}

// nodeResults turns two samples' per-node counters into NodeResults.
func (r *runner) nodeResults(a, b *sample, wall float64) []NodeResult {
	if !r.cfg.multiNode() || len(a.nodeCtr) == 0 || len(b.nodeCtr) == 0 {
		return nil
	}
	out := make([]NodeResult, r.cfg.nodeCount())
	for k := range out {
		nr := &out[k]
		nr.Node, nr.ServerCPUPercent, nr.ServerCPUUsPerPacket = k, -1, -1
		if k < len(r.cfg.WHEPs) {
			nr.WHEP, nr.Server = r.cfg.WHEPs[k], serverName(r.cfg.WHEPs[k])
			nr.SubscribersConnected = r.connectedOn(k)
			if r.sink != nil {
				nr.PacketsReceived = b.nodeSink[k][sinkMedia].Packets - a.nodeSink[k][sinkMedia].Packets
				nr.PacketsExpected = (b.pubSent - a.pubSent) * uint64(r.sunkNode[k])
			} else {
				nr.PacketsReceived = b.nodeCtr[k][ctrRTP] - a.nodeCtr[k][ctrRTP]
				nr.PacketsExpected = b.nodeCtr[k][ctrExpected] - a.nodeCtr[k][ctrExpected]
			}
			nr.LossRatio = lossRatio(nr.PacketsReceived, nr.PacketsExpected)
			nr.EgressPPS = float64(nr.PacketsReceived) / wall
		}
		if k < len(r.cfg.ServerPIDs) && a.nodeCPUOK[k] && b.nodeCPUOK[k] {
			nr.PID = r.cfg.ServerPIDs[k]
			cpu := float64(b.nodeCPU[k] - a.nodeCPU[k])
			nr.ServerCPUPercent = cpu / (wall * 1e4)
			if nr.PacketsReceived > 0 {
				nr.ServerCPUUsPerPacket = cpu / float64(nr.PacketsReceived)
			}
		}
	}
	return out
}

// connectedOn counts the connected subscribers of node k.
func (r *runner) connectedOn(k int) int {
	n := 0
	for _, s := range r.subs {
		if s.node == k && s.connected.Load() != 0 {
			n++
		}
	}
	return n
}

// countSunk recounts the subscribers on the sink, in total and per node.
func (r *runner) countSunk() {
	r.sunk = 0
	r.sunkNode = make([]int, r.cfg.nodeCount())
	for _, s := range r.subs {
		if s.sunk.Load() {
			r.sunk++
			r.sunkNode[s.node]++
		}
	}
}

// writeNodes prints one line per node and step under the text table.
func writeNodes(w io.Writer, rows []Result) {
	for _, s := range rows {
		for _, n := range s.Nodes {
			fmt.Fprintf(w, "node %d %s pid %d: %d subs, loss %.3f %%, egress %.0f pps, cpu %s %%, %s µs/pkt (step %d)\n",
				n.Node, nodeName(n), n.PID, n.SubscribersConnected, n.LossRatio*100, n.EgressPPS,
				na(n.ServerCPUPercent, "%.1f"), na(n.ServerCPUUsPerPacket, "%.3f"), s.SubscribersRequested)
		}
	}
}

func nodeName(n NodeResult) string {
	if n.Server == "" {
		return "(no players)"
	}
	return n.Server
}

// markdownNodes renders the per-node figures of rows, or "" for one node.
func markdownNodes(rows []Result) string {
	var b strings.Builder
	for _, s := range rows {
		if len(s.Nodes) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\nPer node (subscribers round-robin over the WHEP URLs):\n\n" +
				"| step | node | server | pid | subs | loss % | egress pps | CPU % | µs/egress pkt |\n" +
				"|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
		}
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "| %d | %d | %s | %d | %d | %.3f | %.0f | %s | %s |\n", s.SubscribersRequested, n.Node,
				nodeName(n), n.PID, n.SubscribersConnected, n.LossRatio*100, n.EgressPPS,
				na(n.ServerCPUPercent, "%.1f"), na(n.ServerCPUUsPerPacket, "%.3f"))
		}
	}
	return b.String()
}
