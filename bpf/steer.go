// Package bpf holds Fanout's eBPF programs and their loaders.
//
// The XDP shield (shield.go, c/shield.c) sits in the driver of the
// interfaces that carry the RTC port: UDP to that port passes only from
// the remote address of a live session (a hash map control fills through
// Shield.Add and Remove) or as a STUN Binding Request, and those are limited
// per source IP by a token bucket in an LRU map; everything else (other
// ports, TCP, not IP) passes. Per-CPU counters count each verdict. It is C,
// compiled by bpf2go (`make generate`; the object and its Go are committed
// and `make generate-check` proves them current), attached through a
// bpf_link that the kernel drops with the process; nothing is pinned.
//
// AF_XDP (issue 16 part 2, xsk.go, xsk_tx.go): with ShieldConfig.AFXDP the
// same program sends sessions' RTP and RTCP to the AF_XDP socket of their
// RX queue (an XSKMAP; AttachXSK), and leaves them to the kernel where the
// queue has none. An XSK is one socket with its own UMEM, fill, RX, TX and
// completion rings, over golang.org/x/sys/unix, zero-copy where the driver
// allows and copy mode otherwise: half its frames receive, half are a TX
// pool the completion ring refills, and a kick (sendto) happens only when
// the kernel asks for one. fastpath/xskio drives it through its Socket
// interface (cmd wires one per core), and builds the frames' headers.
//
// The SK_REUSEPORT program keeps every WebRTC 5-tuple on
// the fastpath core that owns its session. Control writes the owning core
// into the first two characters of the server ICE ufrag, as lowercase hex
// (route.UfragForCore); the program reads them from the USERNAME
// attribute of a STUN Binding Request ("serverUfrag:clientUfrag", RFC 8445
// §7.2.2), remembers the core for the datagram's 4-tuple hash in an LRU map,
// and selects that core's socket from a REUSEPORT_SOCKARRAY for this and
// every later datagram of the flow (DTLS, SRTP, SRTCP). Datagrams of flows it
// has not seen, and ufrags that name no socket, fall through to the kernel's
// reuseport hash, which the fastpath survives by handing datagrams to their
// owner core.
//
// The steering program is written with cilium/ebpf's asm package.
//
// Who imports it: cmd (which passes AttachUfragSteering to the fastpath
// through fastpath.Config.Steer, and hands the Shield to control as its
// Peers). It imports no other Fanout package.
// Loading needs CAP_BPF and CAP_NET_ADMIN (root on a default kernel,
// kernel.unprivileged_bpf_disabled); without them AttachUfragSteering fails
// with ErrPermission and the caller falls back to the kernel hash.
//
// Concurrency: a Steering and a Shield are safe for concurrent use; their
// methods only read and write maps or close descriptors. An XSK has one
// owner goroutine.
package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Sentinel errors.
var (
	// ErrPermission means the kernel refused BPF: the process lacks CAP_BPF
	// and CAP_NET_ADMIN (run as root).
	ErrPermission = errors.New("bpf: permission denied: SK_REUSEPORT steering needs CAP_BPF and CAP_NET_ADMIN")
	// ErrNoSockets means the group had no sockets to steer to.
	ErrNoSockets = errors.New("bpf: no sockets")
	// ErrNoInterfaces means the shield was given no interface to attach to.
	ErrNoInterfaces = errors.New("bpf: shield: no interfaces")
	// ErrNoPort means the shield was given no RTC port to guard.
	ErrNoPort = errors.New("bpf: shield: no RTC port")
)

// FlowCapacity is how many 4-tuples the LRU map remembers; the least
// recently seen flow is forgotten first (it then follows the kernel hash
// until its next STUN consent check, RFC 7675: every 5 s or so).
const FlowCapacity = 1 << 16

// Counter indices of Steering.Counters.
const (
	CountSTUN       = iota // STUN Binding Requests whose ufrag named a core
	CountFlow              // later datagrams steered by the flow map
	CountHash              // datagrams left to the kernel hash (unknown flow)
	CountSelectFail        // a named core had no socket: kernel hash
	numCounters
)

// Steering is an attached program and its maps.
type Steering struct {
	prog   *ebpf.Program
	socks  *ebpf.Map
	flows  *ebpf.Map
	counts *ebpf.Map
	fd     int // the socket the program was attached through
}

// AttachUfragSteering loads the program and attaches it to the reuseport
// group of fds, which must all be bound, SO_REUSEPORT UDP sockets on one
// address; fds[i] receives the flows whose ufrag names core i.
func AttachUfragSteering(fds []int) (*Steering, error) {
	if len(fds) == 0 {
		return nil, ErrNoSockets
	}
	s := &Steering{fd: fds[0]}
	var err error
	s.socks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fanout_socks", Type: ebpf.ReusePortSockArray,
		KeySize: 4, ValueSize: 8, MaxEntries: uint32(len(fds))})
	if err != nil {
		return nil, wrap("create REUSEPORT_SOCKARRAY", err)
	}
	s.flows, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fanout_flows", Type: ebpf.LRUHash,
		KeySize: 4, ValueSize: 4, MaxEntries: FlowCapacity})
	if err != nil {
		s.Close()
		return nil, wrap("create flow map", err)
	}
	s.counts, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fanout_steer_n", Type: ebpf.Array,
		KeySize: 4, ValueSize: 8, MaxEntries: numCounters})
	if err != nil {
		s.Close()
		return nil, wrap("create counter map", err)
	}
	for i, fd := range fds {
		if err := s.socks.Put(uint32(i), uint64(fd)); err != nil {
			s.Close()
			return nil, wrap(fmt.Sprintf("add socket %d to REUSEPORT_SOCKARRAY", i), err)
		}
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "fanout_steer", Type: ebpf.SkReuseport, License: "Dual MIT/GPL",
		Instructions: Program(s.socks.FD(), s.flows.FD(), s.counts.FD()),
	})
	if err != nil {
		s.Close()
		return nil, wrap("load SK_REUSEPORT program", err)
	}
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, s.prog.FD()); err != nil {
		s.Close()
		return nil, wrap("SO_ATTACH_REUSEPORT_EBPF", err)
	}
	return s, nil
}

func wrap(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (%s: %v)", ErrPermission, what, err)
	}
	return fmt.Errorf("bpf: %s: %w", what, err)
}

// Counters returns the program's counters, indexed by the Count constants.
func (s *Steering) Counters() [numCounters]uint64 {
	var out [numCounters]uint64
	for i := range out {
		var v uint64
		if s.counts.Lookup(uint32(i), &v) == nil {
			out[i] = v
		}
	}
	return out
}

// Close detaches the program from the group (Linux ≥ 5.8; on older kernels
// it stays until the last socket closes) and frees the maps.
func (s *Steering) Close() error {
	if s.prog != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
		_ = s.prog.Close()
	}
	for _, m := range []*ebpf.Map{s.socks, s.flows, s.counts} {
		if m != nil {
			_ = m.Close()
		}
	}
	return nil
}

// sk_reuseport_md offsets (include/uapi/linux/bpf.h).
const (
	mdHash = 32 // __u32 hash: the kernel's 4-tuple hash, the flow key
	skPass = 1
)

// Packet layout: the context's data starts at the UDP header.
const (
	udpHeader    = 8
	stunHeader   = 20
	maxAttrs     = 8      // attributes walked before USERNAME; browsers put it first
	stunBinding  = 0x0100 // type 0x0001 read little-endian
	stunCookie   = 0x42a41221
	attrUsername = 0x0600 // type 0x0006 read little-endian
)

// Stack slots (offsets from R10).
const (
	slotKey     = -4  // u32 flow hash
	slotCore    = -8  // u32 core index
	slotScratch = -16 // 8 bytes loaded from the packet
	slotCounter = -20 // u32 counter index
)

// Program returns the steering program for the given map descriptors. It
// is exported so tests can inspect it; AttachUfragSteering loads it.
func Program(socks, flows, counts int) asm.Instructions {
	load := func(off asm.Register) asm.Instructions { // scratch = packet[off:off+8]
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, off),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, slotScratch),
			asm.Mov.Imm(asm.R4, 8),
			asm.FnSkbLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, "lookup"),
		}
	}
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R0, asm.R6, mdHash, asm.Word),
		asm.StoreMem(asm.RFP, slotKey, asm.R0, asm.Word),
		asm.Mov.Imm(asm.R7, udpHeader),
	}
	// STUN Binding Request with the RFC 5389 magic cookie?
	ins = append(ins, load(asm.R7)...)
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, slotScratch, asm.Half),
		asm.JNE.Imm(asm.R1, stunBinding, "lookup"),
		asm.LoadMem(asm.R1, asm.RFP, slotScratch+4, asm.Word),
		asm.JNE.Imm(asm.R1, stunCookie, "lookup"),
		asm.Mov.Imm(asm.R7, udpHeader+stunHeader),
	)
	// Walk the attributes (type, length, value padded to 4: RFC 8489 §14).
	for range maxAttrs {
		ins = append(ins, load(asm.R7)...)
		ins = append(ins,
			asm.LoadMem(asm.R1, asm.RFP, slotScratch, asm.Half),
			asm.JEq.Imm(asm.R1, attrUsername, "username"),
			asm.LoadMem(asm.R1, asm.RFP, slotScratch+2, asm.Half),
			asm.HostTo(asm.BE, asm.R1, asm.Half),
			asm.Add.Imm(asm.R1, 3+4),
			asm.And.Imm(asm.R1, ^3),
			asm.Add.Reg(asm.R7, asm.R1),
		)
	}
	ins = append(ins, asm.Ja.Label("lookup"))
	// USERNAME: two lowercase hex digits name the core.
	ins = append(ins,
		asm.LoadMem(asm.R1, asm.RFP, slotScratch+2, asm.Half).WithSymbol("username"),
		asm.HostTo(asm.BE, asm.R1, asm.Half),
		asm.JLT.Imm(asm.R1, 3, "lookup"),
		asm.LoadMem(asm.R8, asm.RFP, slotScratch+4, asm.Byte),
	)
	ins = append(ins, unhex(asm.R8, "hi")...)
	ins = append(ins, asm.LoadMem(asm.R9, asm.RFP, slotScratch+5, asm.Byte))
	ins = append(ins, unhex(asm.R9, "lo")...)
	ins = append(ins,
		asm.LSh.Imm(asm.R8, 4),
		asm.Or.Reg(asm.R8, asm.R9),
		asm.StoreMem(asm.RFP, slotCore, asm.R8, asm.Word),
		asm.LoadMapPtr(asm.R1, flows),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, slotCore),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY: a new STUN request re-steers the flow
		asm.FnMapUpdateElem.Call(),
	)
	ins = append(ins, count(counts, CountSTUN)...)
	ins = append(ins, asm.Ja.Label("select"))
	// Any other datagram: the core remembered for its flow, if any.
	ins = append(ins,
		asm.LoadMapPtr(asm.R1, flows).WithSymbol("lookup"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "hash"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, slotCore, asm.R1, asm.Word),
	)
	ins = append(ins, count(counts, CountFlow)...)
	ins = append(ins,
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("select"),
		asm.LoadMapPtr(asm.R2, socks),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, slotCore),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkSelectReuseport.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
	)
	ins = append(ins, count(counts, CountSelectFail)...)
	ins = append(ins, asm.Ja.Label("pass"))
	hash := count(counts, CountHash)
	hash[0] = hash[0].WithSymbol("hash")
	ins = append(ins, hash...)
	// SK_PASS without a selection: the kernel's hash picks the socket.
	ins = append(ins, asm.Mov.Imm(asm.R0, skPass).WithSymbol("pass"), asm.Return())
	return ins
}

// unhex turns the ASCII lowercase hex digit in r into its value, or jumps
// to "lookup" (a ufrag that names no core).
func unhex(r asm.Register, tag string) asm.Instructions {
	return asm.Instructions{
		asm.JLT.Imm(r, '0', "lookup"),
		asm.JGT.Imm(r, 'f', "lookup"),
		asm.JLE.Imm(r, '9', "digit_"+tag),
		asm.JLT.Imm(r, 'a', "lookup"),
		asm.Sub.Imm(r, 'a'-10),
		asm.Ja.Label("done_" + tag),
		asm.Sub.Imm(r, '0').WithSymbol("digit_" + tag),
		asm.Mov.Reg(r, r).WithSymbol("done_" + tag),
	}
}

// count adds one to counter idx (clobbers R0–R5).
func count(counts, idx int) asm.Instructions {
	skip := fmt.Sprintf("counted_%d", idx)
	return asm.Instructions{
		asm.StoreImm(asm.RFP, slotCounter, int64(idx), asm.Word),
		asm.LoadMapPtr(asm.R1, counts),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotCounter),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, skip),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R0).WithSymbol(skip),
	}
}
