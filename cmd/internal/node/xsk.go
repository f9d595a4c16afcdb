package node

import (
	"net"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanout/fanout/bpf"
	"github.com/fanout/fanout/fastpath/xskio"
)

// startXSK opens AF_XDP mode (`xdp_mode afxdp`): one AF_XDP socket per RX
// queue of iface that has a core (core i owns queue i), entered in the
// shield's XSKMAP and handed to its core with the interface's next-hop
// table. A queue without a core, or a socket that cannot open, leaves its
// traffic on the kernel path, said once. Closers run before the shield's.
func (s *Server) startXSK(iface string) {
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		s.log.Warn("fastpath: AF_XDP off", "interface", iface, "reason", err.Error())
		return
	}
	hops, err := xskio.NewHops(ifc.Index)
	if err != nil {
		s.log.Warn("fastpath: AF_XDP off", "interface", iface, "reason", err.Error())
		return
	}
	s.closers = append(s.closers, hops.Close)
	queues := min(rxQueues(iface), s.fp.Cores())
	modes := make([]string, 0, queues)
	for q := range queues {
		x, err := bpf.NewXSK(ifc.Index, q)
		if err == nil {
			if err = s.shield.AttachXSK(q, x); err != nil {
				_ = x.Close()
			}
		}
		if err != nil {
			s.log.Warn("fastpath: AF_XDP off for the remaining RX queues; their media takes the sockets",
				"interface", iface, "queue", q, "reason", err.Error())
			break
		}
		s.closers = append(s.closers, func() { _ = x.Close() })
		s.fp.AttachXSK(q, xskio.NewPort(x, hops, uint16(s.fp.Port()), s.cfg.Fastpath.Batch, bpf.XSKFrameSize))
		modes = append(modes, x.Mode())
	}
	if len(modes) > 0 {
		s.log.Info("fastpath: AF_XDP on", "interface", iface, "queues", len(modes), "rx_queues", rxQueues(iface),
			"modes", modes)
	}
}

// rxQueues counts iface's RX queues (1 when sysfs does not say).
func rxQueues(iface string) int {
	m, err := filepath.Glob(filepath.Join("/sys/class/net", iface, "queues", "rx-*"))
	if err != nil || len(m) == 0 {
		return 1
	}
	return len(m)
}

var (
	mXSKFrames = prometheus.NewDesc("fanout_xsk_frames_total", "Frames through a core's AF_XDP rings, by direction.", []string{"core", "dir"}, nil)
	mXSKEvents = prometheus.NewDesc("fanout_xsk_events_total",
		"AF_XDP stalls, drops and socket fallbacks per core, by event.", []string{"core", "event"}, nil)
)

// collectXSK exports each core's AF_XDP counters.
func (s *Server) collectXSK(ch chan<- prometheus.Metric) {
	if s.fp == nil {
		return
	}
	stats, ok := s.fp.XSKStats()
	for i, st := range stats {
		if !ok[i] {
			continue
		}
		core := strconv.Itoa(i)
		ch <- prometheus.MustNewConstMetric(mXSKFrames, prometheus.CounterValue, float64(st.RxFrames), core, "rx")
		ch <- prometheus.MustNewConstMetric(mXSKFrames, prometheus.CounterValue, float64(st.TxFrames), core, "tx")
		for _, e := range []struct {
			name string
			v    uint64
		}{
			{"rx_invalid", st.RxInvalid}, {"kick", st.Kicks}, {"completion_stall", st.CompletionStalls},
			{"tx_ring_full", st.TxRingFull}, {"tx_dropped", st.TxDropped}, {"fallback", st.Fallbacks},
			{"fill_stall", st.FillStalls}, {"rx_ring_full", st.RxRingFull}, {"rx_dropped", st.RxDropped},
		} {
			ch <- prometheus.MustNewConstMetric(mXSKEvents, prometheus.CounterValue, float64(e.v), core, e.name)
		}
	}
}
