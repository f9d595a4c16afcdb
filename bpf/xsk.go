package bpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// XSK is an AF_XDP socket bound to one RX queue of an interface, with its
// own UMEM of XSKFrames frames of XSKFrameSize bytes: the first half waits
// in the fill ring for the kernel to receive into (Receive, Refill), the
// second half is a free list of TX frames (TXFrame, Transmit) that the
// completion ring gives back. Zero-copy where the driver has it, copy mode
// otherwise (Mode). The shield redirects a session's RTP and RTCP on that
// queue into it once AttachXSK names it. fastpath/xskio drives it through
// its Socket interface; this package owns the rings, xskio the frames'
// contents.
//
// Concurrency: one goroutine owns an XSK (every method but FD and Mode);
// Close after it stopped. Nothing here allocates after NewXSK.
type XSK struct {
	fd        int
	umem      []byte
	frameSize uint32
	fill, rx  ring
	comp, tx  ring
	maps      [][]byte
	free      []uint64 // TX frames not in flight (a stack)
	pending   uint32   // TX descriptors the kernel has not taken yet
	zeroCopy  bool
	wakeup    bool           // bound with XDP_USE_NEED_WAKEUP
	pfd       [1]unix.PollFd // Wait's, allocated once
	kicks     uint64         // sendto calls Kick made
}

// ring is a mapped single-producer single-consumer ring (include/uapi/
// linux/if_xdp.h): producer and consumer indices, flags, and entries of 8
// bytes (UMEM addresses) or 16 (xdp_desc).
type ring struct {
	producer, consumer *uint32
	flags              *uint32
	descs              unsafe.Pointer
	mask               uint32
}

// XSK sizes: frames in the UMEM, each ring's entries (a power of two).
const (
	XSKFrames    = 4096
	XSKFrameSize = 2048
	xskRing      = 2048
	// txBudget is how many TX frames one sendto may take in copy mode
	// (XDP_MAX_TX_SKB_BUDGET, Linux 6.17+; the kernel's default is 32).
	txBudget = 256
)

// NewXSK creates an AF_XDP socket on queue of interface ifindex, zero-copy
// if the driver allows it and in copy mode otherwise, and hands the kernel
// half of the UMEM's frames to receive into. It must be called in the
// interface's network namespace.
func NewXSK(ifindex, queue int) (*XSK, error) {
	x, err := newXSK(ifindex, queue, unix.XDP_ZEROCOPY|unix.XDP_USE_NEED_WAKEUP)
	if err == nil {
		x.zeroCopy = true
		return x, nil
	}
	x, cerr := newXSK(ifindex, queue, unix.XDP_COPY|unix.XDP_USE_NEED_WAKEUP)
	if cerr != nil {
		return nil, errors.Join(cerr, err)
	}
	return x, nil
}

func newXSK(ifindex, queue int, flags uint16) (*XSK, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("AF_XDP socket", err)
	}
	x := &XSK{fd: fd, frameSize: XSKFrameSize, wakeup: flags&unix.XDP_USE_NEED_WAKEUP != 0}
	if err := x.setup(ifindex, queue, flags); err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

func (x *XSK) setup(ifindex, queue int, flags uint16) error {
	var err error
	x.umem, err = unix.Mmap(-1, 0, XSKFrames*XSKFrameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return wrap("UMEM mmap", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: XSKFrameSize}
	if err := setsockopt(x.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return wrap("XDP_UMEM_REG", err)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := unix.SetsockoptInt(x.fd, unix.SOL_XDP, opt, xskRing); err != nil {
			return wrap(fmt.Sprintf("XDP ring option %d", opt), err)
		}
	}
	// Older kernels have no budget option and keep 32 per sendto.
	_ = unix.SetsockoptInt(x.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, txBudget)
	if err := x.mapRings(); err != nil {
		return err
	}
	// The first xskRing frames wait in the fill ring; Refill returns each
	// received one. The rest are TX frames.
	for i := range uint64(xskRing) {
		*(*uint64)(unsafe.Add(x.fill.descs, i*8)) = i * XSKFrameSize
	}
	atomic.StoreUint32(x.fill.producer, xskRing)
	x.free = make([]uint64, 0, XSKFrames-xskRing)
	for i := uint64(XSKFrames - 1); i >= xskRing; i-- {
		x.free = append(x.free, i*XSKFrameSize)
	}
	sa := &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := unix.Bind(x.fd, sa); err != nil {
		return wrap(fmt.Sprintf("bind AF_XDP to ifindex %d queue %d", ifindex, queue), err)
	}
	return nil
}

func (x *XSK) mapRings() error {
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return wrap("XDP_MMAP_OFFSETS", e)
	}
	desc := int(unsafe.Sizeof(unix.XDPDesc{}))
	var err error
	if x.fill, err = x.mapRing(off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8); err != nil {
		return err
	}
	if x.comp, err = x.mapRing(off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8); err != nil {
		return err
	}
	if x.rx, err = x.mapRing(off.Rx, unix.XDP_PGOFF_RX_RING, desc); err != nil {
		return err
	}
	x.tx, err = x.mapRing(off.Tx, unix.XDP_PGOFF_TX_RING, desc)
	return err
}

func (x *XSK) mapRing(o unix.XDPRingOffset, pgoff int64, entry int) (ring, error) {
	b, err := unix.Mmap(x.fd, pgoff, int(o.Desc)+xskRing*entry, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, wrap("mmap XDP ring", err)
	}
	x.maps = append(x.maps, b)
	base := unsafe.Pointer(&b[0])
	return ring{
		producer: (*uint32)(unsafe.Add(base, o.Producer)),
		consumer: (*uint32)(unsafe.Add(base, o.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, o.Flags)),
		descs:    unsafe.Add(base, o.Desc),
		mask:     xskRing - 1,
	}, nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// FD is the socket, for the shield's XSKMAP and poll.
func (x *XSK) FD() int { return x.fd }

// Mode is "zerocopy" or "copy".
func (x *XSK) Mode() string {
	if x.zeroCopy {
		return "zerocopy"
	}
	return "copy"
}

// UMEM is the frames' memory; a descriptor's Addr is an offset into it.
func (x *XSK) UMEM() []byte { return x.umem }

// Receive moves up to len(descs) received frames from the RX ring into
// descs and returns how many; Frame reads one. Each must go back to the
// kernel with Refill once read.
func (x *XSK) Receive(descs []unix.XDPDesc) int {
	cons := *x.rx.consumer
	n := min(atomic.LoadUint32(x.rx.producer)-cons, uint32(len(descs)))
	for i := range n {
		descs[i] = *(*unix.XDPDesc)(unsafe.Add(x.rx.descs, uintptr((cons+i)&x.rx.mask)*unsafe.Sizeof(unix.XDPDesc{})))
	}
	atomic.StoreUint32(x.rx.consumer, cons+n)
	return int(n)
}

// Frame is the Ethernet frame a descriptor names, inside the UMEM.
func (x *XSK) Frame(d unix.XDPDesc) []byte { return x.umem[d.Addr : d.Addr+uint64(d.Len)] }

// Refill hands the frames of descs back to the kernel's fill ring. The
// ring has room for every frame: it holds at most the UMEM's half. When
// the kernel asks to be woken for it (need_wakeup), a zero poll does.
func (x *XSK) Refill(descs []unix.XDPDesc) {
	prod := *x.fill.producer
	for i, d := range descs {
		base := d.Addr - d.Addr%uint64(x.frameSize) // copy mode may offset the data by a headroom
		*(*uint64)(unsafe.Add(x.fill.descs, uintptr((prod+uint32(i))&x.fill.mask)*8)) = base
	}
	atomic.StoreUint32(x.fill.producer, prod+uint32(len(descs)))
	if x.wakeup && len(descs) > 0 && atomic.LoadUint32(x.fill.flags)&unix.XDP_RING_NEED_WAKEUP != 0 {
		_, _, _ = unix.Syscall6(unix.SYS_RECVFROM, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
}

// Wait blocks until the RX ring has frames or timeoutMs passes.
func (x *XSK) Wait(timeoutMs int) error {
	x.pfd[0] = unix.PollFd{Fd: int32(x.fd), Events: unix.POLLIN}
	_, err := unix.Poll(x.pfd[:], timeoutMs)
	if err == unix.EINTR {
		return nil
	}
	return err
}

// Close unmaps the rings and the UMEM and closes the socket (which takes
// it out of the shield's XSKMAP).
func (x *XSK) Close() error {
	for _, b := range x.maps {
		_ = unix.Munmap(b)
	}
	x.maps = nil
	err := unix.Close(x.fd)
	if x.umem != nil {
		_ = unix.Munmap(x.umem)
		x.umem = nil
	}
	return err
}

// AttachXSK makes x the AF_XDP socket of RX queue queue: with AFXDP on,
// sessions' RTP and RTCP arriving on that queue go to x.
func (s *Shield) AttachXSK(queue int, x *XSK) error {
	if err := s.objs.Xsks.Put(uint32(queue), uint32(x.FD())); err != nil {
		return wrap(fmt.Sprintf("add AF_XDP socket of queue %d to XSKMAP", queue), err)
	}
	return nil
}
