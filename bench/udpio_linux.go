package bench

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is the number of datagrams per recvmmsg/sendmmsg call; 64 is the
// batch the fastpath and the probes in notes/testing-here.md §4 use.
const batchSize = 64

// maxDatagram is the receive buffer size per message.
const maxDatagram = 1536

// mmsgBatch is a preallocated recvmmsg/sendmmsg message array over one slab.
type mmsgBatch struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
}

func newBatch(n, size int) *mmsgBatch {
	b := &mmsgBatch{
		msgs: make([]unix.Mmsghdr, n),
		iovs: make([]unix.Iovec, n),
		bufs: make([][]byte, n),
	}
	slab := make([]byte, n*size)
	for i := range n {
		b.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(size)
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	return b
}

// setLen sets the length of message i (for sendmmsg).
func (b *mmsgBatch) setLen(i, n int) { b.iovs[i].SetLen(n) }

// recvmmsg reads up to len(b.msgs) datagrams without blocking. It returns
// the count, or 0 and the errno (EAGAIN when the socket is empty).
func recvmmsg(fd int, b *mmsgBatch) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)),
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// sendmmsg sends messages off..off+n of b on a connected or addressed fd.
func sendmmsg(fd int, b *mmsgBatch, off, n int) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&b.msgs[off])), uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// udpSocket opens a non-blocking UDP socket bound to laddr (port 0 picks
// one) with a receive buffer of rcvbuf bytes, and returns it with its port.
func udpSocket(laddr netip.Addr, rcvbuf int) (int, uint16, error) {
	fam := unix.AF_INET
	if laddr.Is6() && !laddr.Is4In6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("udp socket: %w", err)
	}
	if rcvbuf > 0 {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(laddr, 0))); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("udp bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("udp getsockname: %w", err)
	}
	var port int
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return fd, uint16(port), nil
}

// sockaddr converts an address to the unix form.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// epoll is a level-triggered epoll set whose event data is a slot index.
type epoll struct {
	fd     int
	events []unix.EpollEvent
}

func newEpoll(n int) (*epoll, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll create: %w", err)
	}
	return &epoll{fd: fd, events: make([]unix.EpollEvent, n)}, nil
}

func (e *epoll) add(fd int, slot int32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: slot}
	if err := unix.EpollCtl(e.fd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	return nil
}

func (e *epoll) del(fd int) error {
	if err := unix.EpollCtl(e.fd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll del: %w", err)
	}
	return nil
}

func (e *epoll) wait(msec int) int {
	n, err := unix.EpollWait(e.fd, e.events, msec)
	if err != nil {
		return 0
	}
	return n
}

func (e *epoll) close() { unix.Close(e.fd) }
