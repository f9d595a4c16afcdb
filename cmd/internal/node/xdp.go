package node

import (
	"errors"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanout/fanout/bpf"
)

// startShield attaches the XDP shield (`fastpath { xdp IFACE…; }`) to the
// interfaces of the RTC port, once the fastpath has bound it. Without it
// (xdp off, no permission, no such interface, no XDP in the kernel)
// Fanout runs as before and says why once.
func (s *Server) startShield() {
	f := s.cfg.Fastpath
	if len(f.XDP) == 0 {
		if f.XDPMode == "afxdp" {
			s.log.Warn("fastpath: AF_XDP off; xdp_mode afxdp needs an xdp interface (xdp IFACE;)")
		}
		return
	}
	afxdp := f.XDPMode == "afxdp"
	if afxdp && len(f.XDP) != 1 {
		s.log.Warn("fastpath: AF_XDP off; xdp_mode afxdp needs exactly one xdp interface (an XSKMAP names sockets by RX queue only)",
			"interfaces", f.XDP)
		afxdp = false
	}
	sh, err := bpf.AttachShield(bpf.ShieldConfig{Interfaces: f.XDP, Port: uint16(s.fp.Port()),
		STUNRate: float64(f.XDPSTUNRate), STUNBurst: f.XDPSTUNBurst, AFXDP: afxdp})
	if err != nil {
		why := err.Error()
		if errors.Is(err, bpf.ErrPermission) || errors.Is(err, os.ErrPermission) {
			why = "needs CAP_BPF and CAP_NET_ADMIN (run as root): " + why
		}
		s.log.Warn("fastpath: XDP shield off; UDP to the RTC port is not filtered before the socket", "interfaces", f.XDP,
			"afxdp", afxdp, "reason", why)
		return
	}
	s.shield = sh
	s.closers = append(s.closers, func() { _ = sh.Close() })
	s.log.Info("fastpath: XDP shield on", "interfaces", f.XDP, "modes", sh.Modes(), "port", s.fp.Port(),
		"stun_rate", f.XDPSTUNRate, "stun_burst", f.XDPSTUNBurst)
	if afxdp {
		s.startXSK(f.XDP[0])
	}
}

var (
	mXDP         = prometheus.NewDesc("fanout_xdp_packets_total", "Packets the XDP shield judged, by verdict.", []string{"verdict"}, nil)
	mXDPPeerErrs = prometheus.NewDesc("fanout_xdp_peer_errors_total", "Session addresses the XDP shield's peer map refused (full).", nil, nil)
)

// shieldMetrics exports the shield's verdict counters on /metrics.
type shieldMetrics struct{ s *Server }

func (m *shieldMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- mXDP
	ch <- mXDPPeerErrs
	ch <- mXSKFrames
	ch <- mXSKEvents
}

func (m *shieldMetrics) Collect(ch chan<- prometheus.Metric) {
	sh := m.s.shield
	if sh == nil {
		return
	}
	for v, n := range sh.Counters() {
		ch <- prometheus.MustNewConstMetric(mXDP, prometheus.CounterValue, float64(n), bpf.VerdictNames[v])
	}
	ch <- prometheus.MustNewConstMetric(mXDPPeerErrs, prometheus.CounterValue, float64(sh.PeerErrors()))
	m.s.collectXSK(ch)
}
