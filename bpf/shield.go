package bpf

//go:generate go tool bpf2go -target bpfel -type peer_key -type shield_cfg shield c/shield.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Verdicts of the XDP shield: indices of ShieldCounters.
const (
	VerdictPassSession = iota // UDP to the RTC port from a session's 5-tuple
	VerdictPassSTUN           // a STUN Binding Request within its source's rate
	VerdictDropUnknown        // UDP to the RTC port from no session, not STUN
	VerdictDropRate           // a STUN Binding Request over its source's rate
	VerdictPassOther          // other ports, TCP, not IP: the shield's business ends
	VerdictRedirectXSK        // a session's RTP/RTCP, to the queue's AF_XDP socket
	NumVerdicts
)

// VerdictNames are the verdicts' metric labels, indexed by Verdict*.
var VerdictNames = [NumVerdicts]string{"pass_session", "pass_stun", "drop_unknown", "drop_ratelimited", "pass_other", "redirect_xsk"}

// ShieldConfig says what the shield guards and how hard.
type ShieldConfig struct {
	// Interfaces carry the RTC port; the program is attached to each.
	Interfaces []string
	// Port is the RTC UDP port.
	Port uint16
	// STUNRate is how many STUN Binding Requests per second one source IP
	// may send from addresses that are no session; STUNBurst how many at
	// once. Defaults 20/s and 40.
	STUNRate  float64
	STUNBurst int
	// AFXDP sends sessions' RTP and RTCP to the AF_XDP socket of their RX
	// queue (AttachXSK) instead of the kernel, where the queue has one.
	AFXDP bool
}

// Shield is the XDP program attached to the RTC interfaces, and its maps.
// Add and Remove may be called from any goroutine.
type Shield struct {
	objs     shieldObjects
	links    []link.Link
	modes    []string // per interface: "native" or "generic"
	peerErrs atomic.Uint64
}

// AttachShield loads the shield and attaches it to every interface in
// cfg, in native (driver) mode where the driver has it and generic mode
// otherwise. The links die with the process; nothing is pinned.
func AttachShield(cfg ShieldConfig) (*Shield, error) {
	if len(cfg.Interfaces) == 0 {
		return nil, ErrNoInterfaces
	}
	s, err := newShield(cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range cfg.Interfaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("bpf: shield: interface %q: %w", name, err)
		}
		l, mode, err := attachXDP(s.objs.FanoutShield, ifc.Index)
		if err != nil {
			s.Close()
			return nil, wrap(fmt.Sprintf("attach XDP to %s", name), err)
		}
		s.links = append(s.links, l)
		s.modes = append(s.modes, mode)
	}
	return s, nil
}

// newShield loads the program and its maps and writes the config.
func newShield(cfg ShieldConfig) (*Shield, error) {
	if cfg.Port == 0 {
		return nil, ErrNoPort
	}
	s := &Shield{}
	if err := loadShieldObjects(&s.objs, nil); err != nil {
		return nil, wrapVerifier("load XDP shield", err)
	}
	if err := s.objs.Config.Put(uint32(0), shieldCfgOf(cfg)); err != nil {
		s.Close()
		return nil, wrap("write shield config", err)
	}
	return s, nil
}

// attachXDP attaches in driver mode, or in generic (SKB) mode when the
// driver has no XDP.
func attachXDP(p *ebpf.Program, ifindex int) (link.Link, string, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: p, Interface: ifindex, Flags: link.XDPDriverMode})
	if err == nil {
		return l, "native", nil
	}
	l, gerr := link.AttachXDP(link.XDPOptions{Program: p, Interface: ifindex, Flags: link.XDPGenericMode})
	if gerr != nil {
		return nil, "", errors.Join(err, gerr)
	}
	return l, "generic", nil
}

func wrapVerifier(what string, err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("bpf: %s: %+v", what, ve)
	}
	return wrap(what, err)
}

func shieldCfgOf(cfg ShieldConfig) shieldShieldCfg {
	rate, burst := cfg.STUNRate, cfg.STUNBurst
	if rate <= 0 {
		rate = DefaultSTUNRate
	}
	if burst <= 0 {
		burst = DefaultSTUNBurst
	}
	interval := uint64(float64(time.Second) / rate)
	var flags uint16
	if cfg.AFXDP {
		flags |= shieldAFXDP
	}
	return shieldShieldCfg{
		Flags:     flags,
		Port:      cfg.Port>>8 | cfg.Port<<8, // network byte order, as the packet has it
		Interval:  interval,
		Tolerance: uint64(burst-1) * interval,
	}
}

// shieldAFXDP is SHIELD_AFXDP of shield_cfg.flags (c/shield.c).
const shieldAFXDP = 1

// Defaults of ShieldConfig's STUN rate limit.
const (
	DefaultSTUNRate  = 20
	DefaultSTUNBurst = 40
)

// Modes names the XDP mode of each interface, in cfg.Interfaces order:
// "native" or "generic".
func (s *Shield) Modes() []string { return s.modes }

// peerKey is the map key of a session's remote address. The rest of the
// 5-tuple is fixed: UDP, to the RTC port, on whichever local address.
func peerKey(a netip.AddrPort) shieldPeerKey {
	p := a.Port()
	return shieldPeerKey{Addr: a.Addr().Unmap().As16(), Port: p>>8 | p<<8}
}

// Add lets UDP from a through the shield (a session's 5-tuple).
func (s *Shield) Add(a netip.AddrPort) {
	if err := s.objs.Peers.Put(peerKey(a), uint8(1)); err != nil {
		s.peerErrs.Add(1)
	}
}

// Remove forgets a (its session ended).
func (s *Shield) Remove(a netip.AddrPort) {
	if err := s.objs.Peers.Delete(peerKey(a)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		s.peerErrs.Add(1)
	}
}

// PeerErrors counts Add/Remove calls the kernel refused (a full map).
func (s *Shield) PeerErrors() uint64 { return s.peerErrs.Load() }

// Counters sums the per-CPU verdict counters.
func (s *Shield) Counters() [NumVerdicts]uint64 {
	var out [NumVerdicts]uint64
	var per []uint64
	for i := range out {
		if s.objs.Counters.Lookup(uint32(i), &per) == nil {
			for _, v := range per {
				out[i] += v
			}
		}
	}
	return out
}

// Close detaches the program from every interface and frees the maps.
func (s *Shield) Close() error {
	for _, l := range s.links {
		_ = l.Close()
	}
	s.links = nil
	return s.objs.Close()
}
