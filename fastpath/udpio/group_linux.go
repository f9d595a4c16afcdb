package udpio

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ListenGroup opens n SO_REUSEPORT sockets on one address, one per core.
// Socket i is member i of the kernel's reuseport group, which is the index a
// SK_REUSEPORT program selects (package bpf). Port 0 picks a free port for
// the first socket; the others join it.
func ListenGroup(o Options, n int) ([]*Conn, error) {
	if n < 1 {
		n = 1
	}
	o.ReusePort = true
	conns := make([]*Conn, 0, n)
	for i := range n {
		c, err := Listen(o)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, fmt.Errorf("socket %d of %d: %w", i, n, err)
		}
		if i == 0 {
			o.Addr = netip.AddrPortFrom(o.Addr.Addr(), uint16(c.Port()))
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// ProbeGSO reports whether the kernel accepts UDP_SEGMENT on c (Linux ≥ 4.18).
// A device without UDP segmentation offload can still fail a GSO send with
// EIO; Out turns GSO off then.
func ProbeGSO(c *Conn) bool {
	_, err := unix.GetsockoptInt(c.fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
}

// Waker is an eventfd a core sleeps on beside its socket, so another core
// can wake it for ring work.
type Waker struct {
	fd    int
	one   [8]byte
	buf   [8]byte
	pfd   [3]unix.PollFd
	ts    unix.Timespec
	watch int // another fd Wait returns for (Watch), 0 = none
}

// NewWaker opens the eventfd.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &Waker{fd: fd}
	binary.NativeEndian.PutUint64(w.one[:], 1) // eventfd counters are host-endian
	return w, nil
}

// Wake makes the owner's next (or current) Wait return. Safe from any goroutine.
func (w *Waker) Wake() {
	_, _, _ = unix.Syscall(unix.SYS_WRITE, uintptr(w.fd), uintptr(unsafe.Pointer(&w.one[0])), 8)
}

// Wait blocks until c has a datagram, the waker fired, or d passed.
// Only the owning core calls it.
func (w *Waker) Wait(c *Conn, d time.Duration) {
	w.pfd[0] = unix.PollFd{Fd: int32(c.fd), Events: unix.POLLIN}
	w.pfd[1] = unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN}
	nfd := 2
	if w.watch > 0 {
		w.pfd[2] = unix.PollFd{Fd: int32(w.watch), Events: unix.POLLIN}
		nfd = 3
	}
	w.ts = unix.NsecToTimespec(int64(d))
	_, _, _ = unix.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&w.pfd[0])), uintptr(nfd),
		uintptr(unsafe.Pointer(&w.ts)), 0, 0, 0)
	if w.pfd[1].Revents&unix.POLLIN != 0 {
		_, _, _ = unix.Syscall(unix.SYS_READ, uintptr(w.fd), uintptr(unsafe.Pointer(&w.buf[0])), 8)
	}
}

// Watch makes Wait also return when fd is readable (a core's AF_XDP
// socket); 0 or less stops watching. Only the owning core calls it.
func (w *Waker) Watch(fd int) { w.watch = fd }

// Close closes the eventfd.
func (w *Waker) Close() error { return unix.Close(w.fd) }

// CPUs returns the CPUs in the calling thread's affinity mask, in order
// (`taskset -c 0 fanout` gives [0]).
func CPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return []int{0}
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) == 0 {
		return []int{0}
	}
	return cpus
}

// PinThread binds the calling OS thread to cpu. The caller must hold
// runtime.LockOSThread and never unlock it, so the pinned thread dies with
// its goroutine instead of going back to the scheduler's pool.
func PinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}
