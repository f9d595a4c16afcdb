package bench

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Sink: capacity mode (-sink). As soon as a subscriber is connected and has
// seen its first keyframe (or at the end of its step without one), its
// reader gives its socket an eBPF socket filter (BPF_PROG_TYPE_SOCKET_FILTER,
// SO_ATTACH_BPF) and takes it out of its epoll set (reader.toSink). The filter
// classifies each datagram by its first bytes (RFC 7983 §7, RFC 5761 §4),
// adds it to a per-CPU counter of its class and returns 0: the datagram is
// dropped before it is queued, so no skb is charged to the socket, nothing
// is copied to user space and no thread is woken. The filter runs in the
// sender's syscall (loopback delivery), so its few instructions are charged
// to the server, like the enqueue they replace.
//
// Where the filter sees the datagram: for a UDP socket the kernel runs it
// from udp_queue_rcv_one_skb (sk_filter_trim_cap with the UDP header as the
// minimum), when skb->data points at the UDP header; the payload starts at
// offset 8 for IPv4 and IPv6 alike. TestSinkFilterPayloadOffset captures the
// bytes a filter sees and proves it; segments of a UDP GSO send are filtered
// one by one (TestSinkFilterCounts, case gso).

// Sink classes: the per-CPU counter each datagram is added to.
const (
	sinkMedia = iota // RTP: first byte 128–191, second byte not 192–223
	sinkRTCP         // first byte 128–191, second byte (packet type) 192–223
	sinkSTUN         // first byte 0–3
	sinkDTLS         // first byte 20–63
	sinkOther        // anything else, or too short to classify
	nSinkClasses
)

// sinkCount is one class's counters: datagrams and UDP payload bytes. It is
// the map's value layout; each CPU has its own.
type sinkCount struct {
	Packets uint64
	Bytes   uint64
}

// sinkCounts is a snapshot of every class, summed over CPUs.
type sinkCounts [nSinkClasses]sinkCount

// add returns c + o, class by class.
func (c sinkCounts) add(o sinkCounts) sinkCounts {
	for k := range c {
		c[k] = sinkCount{c[k].Packets + o[k].Packets, c[k].Bytes + o[k].Bytes}
	}
	return c
}

// sub returns c - prev, class by class.
func (c sinkCounts) sub(prev sinkCounts) sinkCounts {
	var d sinkCounts
	for k := range c {
		d[k] = sinkCount{c[k].Packets - prev[k].Packets, c[k].Bytes - prev[k].Bytes}
	}
	return d
}

// sink is a loaded socket filter and its counter map. One sink serves any
// number of sockets; the sockets keep the program alive once attached, and
// close drops the bench's references. With several nodes (-whep URL,URL…)
// it has one program per node, each counting into its own nSinkClasses
// entries of the one map, so each node's delivery is counted apart.
type sink struct {
	progs  []*ebpf.Program // one per node
	counts *ebpf.Map
}

// newSink loads the counting filter for one node. Without CAP_BPF it fails
// with ErrSinkPermission; the caller must not fall back to reading.
func newSink() (*sink, error) { return newNodeSink(1) }

// newNodeSink loads one counting filter per node over one map.
func newNodeSink(nodes int) (*sink, error) {
	nodes = max(nodes, 1)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "bench_sink_n", Type: ebpf.PerCPUArray,
		KeySize: 4, ValueSize: 16, MaxEntries: uint32(nSinkClasses * nodes)})
	if err != nil {
		return nil, sinkErr("create per-CPU counter map", err)
	}
	s := &sink{counts: m}
	for k := range nodes {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bench_sink", Type: ebpf.SocketFilter,
			License: "Dual MIT/GPL", Instructions: sinkProgram(m.FD(), int32(k*nSinkClasses))})
		if err != nil {
			s.close()
			return nil, sinkErr("load socket filter", err)
		}
		s.progs = append(s.progs, prog)
	}
	return s, nil
}

func sinkErr(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		// Not err itself: cilium's text suggests raising MEMLOCK, which
		// is not the cause on a kernel that accounts BPF memory by cgroup.
		return fmt.Errorf("%w (%s: %v)", ErrSinkPermission, what, unix.EPERM)
	}
	return fmt.Errorf("sink: %s: %w", what, err)
}

// attach makes fd a sink socket of node 0: from now on every datagram for
// it is counted and dropped.
func (s *sink) attach(fd int) error { return s.attachNode(fd, 0) }

// attachNode makes fd a sink socket counted for node k.
func (s *sink) attachNode(fd, k int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, s.progs[k].FD()); err != nil {
		return fmt.Errorf("sink: SO_ATTACH_BPF: %w", err)
	}
	return nil
}

// snapshot reads every class, summed over CPUs and nodes.
func (s *sink) snapshot() (sinkCounts, error) {
	var out sinkCounts
	for k := range s.progs {
		n, err := s.snapshotNode(k)
		if err != nil {
			return out, err
		}
		out = out.add(n)
	}
	return out, nil
}

// snapshotNode reads node k's classes, summed over CPUs.
func (s *sink) snapshotNode(node int) (sinkCounts, error) {
	var out sinkCounts
	var per []sinkCount
	for k := range out {
		if err := s.counts.Lookup(uint32(node*nSinkClasses+k), &per); err != nil {
			return out, fmt.Errorf("sink: read counters: %w", err)
		}
		for _, c := range per {
			out[k].Packets += c.Packets
			out[k].Bytes += c.Bytes
		}
	}
	return out, nil
}

func (s *sink) close() {
	for _, p := range s.progs {
		_ = p.Close()
	}
	_ = s.counts.Close()
}

// __sk_buff.len: the datagram length from skb->data, i.e. UDP header plus
// payload (include/uapi/linux/bpf.h).
const skbLen = 0

// udpHeaderLen is where the filter finds the UDP payload.
const udpHeaderLen = 8

// Stack slot of the map key (offset from R10).
const sinkSlotKey = -4

// sinkProgram returns the counting socket filter for the map counts, whose
// classes start at key base (a node's). R6 holds the context (LD_ABS needs
// it), R7 the UDP payload length, R8 the class.
func sinkProgram(counts int, base int32) asm.Instructions {
	setClass := func(label string, c int32) asm.Instructions {
		return asm.Instructions{asm.Mov.Imm(asm.R8, c).WithSymbol(label), asm.Ja.Label("count")}
	}
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, skbLen, asm.Word),
		asm.Mov.Imm(asm.R8, sinkOther),
		asm.JLT.Imm(asm.R7, udpHeaderLen+2, "short"),
		asm.Sub.Imm(asm.R7, udpHeaderLen),
		// R0 = payload[0]<<8 | payload[1] (LD_ABS loads in network order).
		asm.LoadAbs(udpHeaderLen, asm.Half),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.RSh.Imm(asm.R1, 8),
		asm.And.Imm(asm.R0, 0xff),
		// RFC 7983 §7: the first byte tells STUN, DTLS and RTP/RTCP apart.
		asm.JLT.Imm(asm.R1, 4, "stun"),
		asm.JLT.Imm(asm.R1, 20, "count"),
		asm.JLE.Imm(asm.R1, 63, "dtls"),
		asm.JLT.Imm(asm.R1, 128, "count"),
		asm.JGT.Imm(asm.R1, 191, "count"),
		// RFC 5761 §4: RTCP packet types 192–223 sit where RTP has M and PT.
		asm.JLT.Imm(asm.R0, 192, "rtp"),
		asm.JLE.Imm(asm.R0, 223, "rtcp"),
		asm.JLT.Imm(asm.R7, 12, "count").WithSymbol("rtp"), // shorter than an RTP header: other, as in reader.packet
	}
	ins = append(ins, setClass("media", sinkMedia)...)
	ins = append(ins, setClass("rtcp", sinkRTCP)...)
	ins = append(ins, setClass("stun", sinkSTUN)...)
	ins = append(ins, setClass("dtls", sinkDTLS)...)
	ins = append(ins,
		asm.Mov.Imm(asm.R7, 0).WithSymbol("short"), // other, no payload bytes counted
		asm.Add.Imm(asm.R8, base).WithSymbol("count"),
		asm.StoreMem(asm.RFP, sinkSlotKey, asm.R8, asm.Word),
		asm.LoadMapPtr(asm.R1, counts),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, sinkSlotKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0), // sinkCount.Packets
		asm.AddAtomic.Mem(asm.R0, asm.R7, asm.DWord, 8), // sinkCount.Bytes
		// Return 0: keep no bytes of the datagram, i.e. drop it (socket(7), SO_ATTACH_FILTER).
		asm.Mov.Imm(asm.R0, 0).WithSymbol("drop"),
		asm.Return(),
	)
	return ins
}
