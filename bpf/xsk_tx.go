package bpf

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The XSK's transmit side: TX frames come from a free list that the
// completion ring refills; Transmit puts filled frames on the TX ring and
// Kick tells the kernel, with one sendto per budget of frames and only
// when the kernel asks for it (need_wakeup) or cannot be asked.

// TXFrame takes a free TX frame and returns its UMEM offset; ok is false
// when every TX frame is in flight even after reaping the completion ring
// (a completion stall: the kernel has not sent the earlier ones yet).
func (x *XSK) TXFrame() (addr uint64, ok bool) {
	if len(x.free) == 0 {
		x.Complete()
		if len(x.free) == 0 {
			return 0, false
		}
	}
	addr = x.free[len(x.free)-1]
	x.free = x.free[:len(x.free)-1]
	return addr, true
}

// Release returns a TX frame that TXFrame handed out but that was not
// transmitted.
func (x *XSK) Release(addr uint64) { x.free = append(x.free, addr) }

// Complete moves the frames the kernel finished sending from the
// completion ring to the free list and returns how many.
func (x *XSK) Complete() int {
	cons := *x.comp.consumer
	n := atomic.LoadUint32(x.comp.producer) - cons
	for i := range n {
		a := *(*uint64)(unsafe.Add(x.comp.descs, uintptr((cons+i)&x.comp.mask)*8))
		x.free = append(x.free, a-a%uint64(x.frameSize))
	}
	atomic.StoreUint32(x.comp.consumer, cons+n)
	return int(n)
}

// Transmit puts descs on the TX ring and returns how many fit (the rest:
// TX ring full; the caller releases or retries them). Kick sends them.
func (x *XSK) Transmit(descs []unix.XDPDesc) int {
	prod := *x.tx.producer
	room := xskRing - (prod - atomic.LoadUint32(x.tx.consumer))
	n := min(room, uint32(len(descs)))
	for i := range n {
		*(*unix.XDPDesc)(unsafe.Add(x.tx.descs, uintptr((prod+i)&x.tx.mask)*unsafe.Sizeof(unix.XDPDesc{}))) = descs[i]
	}
	atomic.StoreUint32(x.tx.producer, prod+n)
	x.pending += n
	return int(n)
}

// Kick makes the kernel send what Transmit queued: sendto, repeated while
// the kernel takes frames (copy mode sends a budget per call), skipped
// when the kernel is already sending (need_wakeup clear). It returns the
// sendto calls made.
func (x *XSK) Kick() int {
	calls := 0
	for range XSKFrames / 32 {
		left := *x.tx.producer - atomic.LoadUint32(x.tx.consumer)
		if left == 0 {
			break
		}
		if x.wakeup && atomic.LoadUint32(x.tx.flags)&unix.XDP_RING_NEED_WAKEUP == 0 {
			break
		}
		calls++
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if e != 0 && e != unix.EAGAIN && e != unix.EBUSY && e != unix.ENOBUFS && e != unix.EINTR {
			break
		}
		if *x.tx.producer-atomic.LoadUint32(x.tx.consumer) == left {
			break // no progress: the completion ring is full or the device is busy
		}
	}
	x.pending = 0
	x.kicks += uint64(calls)
	return calls
}

// Statistics is the kernel's count of the socket's drops and stalls
// (XDP_STATISTICS).
func (x *XSK) Statistics() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return st, wrap("XDP_STATISTICS", e)
	}
	return st, nil
}
