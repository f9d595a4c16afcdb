// Package udpio is batched UDP socket I/O for the fastpath: SO_REUSEPORT
// sockets, recvmmsg/sendmmsg over caller-owned, preallocated message arrays,
// and sockaddr encoding that never allocates.
//
// It is written by hand on golang.org/x/sys/unix because x/sys has the
// Mmsghdr type but no recvmmsg/sendmmsg wrappers, and x/net's batch API goes
// through the netpoller and boxes a net.Addr per datagram.
//
// It owns the UDP side of the media port: the per-core reuseport group
// (ListenGroup), receive batches (Batch), send batches that chain a
// destination's datagrams into UDP GSO runs (Out, with a one-way fallback
// when GSO fails), the eventfd a core sleeps on (Waker) and CPU pinning.
// Who imports it: package fastpath, whose core loops own every Batch and
// Out; fastpath/tcpio is its TCP sibling. It builds on Linux only.
//
// Concurrency: a Batch or Out belongs to one goroutine. A Conn's fd may be
// written from several goroutines (the kernel serialises datagram sends).
package udpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest datagram a batch slot holds. WebRTC media is
// sized for a 1200–1500 byte path MTU; 2048 leaves room for SRTP tags.
const MaxDatagram = 2048

// Conn is one UDP socket, IPv6 dual-stack when the host allows it.
type Conn struct {
	fd   int
	v6   bool
	port int
}

// Options for Listen.
type Options struct {
	Addr      netip.AddrPort // unspecified address = all interfaces
	ReusePort bool
	BufBytes  int // SO_RCVBUF/SO_SNDBUF request; 0 = kernel default
}

// Listen opens a bound UDP socket.
func Listen(o Options) (*Conn, error) {
	ip := o.Addr.Addr()
	v6 := !ip.IsValid() || ip.Is6() && !ip.Is4In6()
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil && fam == unix.AF_INET6 && !ip.IsValid() {
		// A host without IPv6: fall back to IPv4 any.
		v6, fam = false, unix.AF_INET
		fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	}
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	c := &Conn{fd: fd, v6: v6}
	if err := c.setup(o, ip); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *Conn) setup(o Options, ip netip.Addr) error {
	if o.ReusePort {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("udp SO_REUSEPORT: %w", err)
		}
	}
	if c.v6 && (!ip.IsValid() || ip.IsUnspecified()) {
		_ = unix.SetsockoptInt(c.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if o.BufBytes > 0 {
		// FORCE variants need CAP_NET_ADMIN; fall back to the capped ones.
		if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, o.BufBytes) != nil {
			_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, o.BufBytes)
		}
		if unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.BufBytes) != nil {
			_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.BufBytes)
		}
	}
	var sa unix.Sockaddr
	port := int(o.Addr.Port())
	if c.v6 {
		s := &unix.SockaddrInet6{Port: port}
		if ip.IsValid() {
			s.Addr = ip.As16()
		}
		sa = s
	} else {
		s := &unix.SockaddrInet4{Port: port}
		if ip.IsValid() {
			s.Addr = ip.Unmap().As4()
		}
		sa = s
	}
	if err := unix.Bind(c.fd, sa); err != nil {
		return fmt.Errorf("udp bind %v: %w", o.Addr, err)
	}
	got, err := unix.Getsockname(c.fd)
	if err != nil {
		return fmt.Errorf("udp getsockname: %w", err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet6:
		c.port = a.Port
	case *unix.SockaddrInet4:
		c.port = a.Port
	}
	return nil
}

// FD returns the socket descriptor (for SO_ATTACH_REUSEPORT_EBPF and tests).
func (c *Conn) FD() int { return c.fd }

// Port returns the bound local port.
func (c *Conn) Port() int { return c.port }

// Close closes the socket. Readers blocked in Recv wake at their read timeout.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// Shutdown wakes a reader blocked in recvmmsg at once.
func (c *Conn) Shutdown() { _ = unix.Shutdown(c.fd, unix.SHUT_RD) }

// Sockaddr is a pre-encoded destination, large enough for IPv6.
type Sockaddr struct {
	raw unix.RawSockaddrInet6
	len uint32
}

// EncodeAddr fills sa for sending to a from this Conn's family.
func (c *Conn) EncodeAddr(sa *Sockaddr, a netip.AddrPort) {
	*sa = Sockaddr{}
	if c.v6 {
		sa.raw.Family = unix.AF_INET6
		sa.raw.Addr = a.Addr().As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.raw.Port))[:], a.Port())
		sa.len = unix.SizeofSockaddrInet6
		return
	}
	r4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
	r4.Family = unix.AF_INET
	r4.Addr = a.Addr().Unmap().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r4.Port))[:], a.Port())
	sa.len = unix.SizeofSockaddrInet4
}

// decodeAddr reads a received sockaddr; IPv4-mapped addresses are unmapped so
// one peer has one AddrPort whichever socket family saw it.
func decodeAddr(raw *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:])
	switch raw.Family {
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr).Unmap(), port)
	case unix.AF_INET:
		r4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(r4.Addr), port)
	}
	return netip.AddrPort{}
}

// WriteTo sends one datagram. Control uses it for STUN and DTLS records; it
// is safe to call concurrently with a Batch on the same Conn.
func (c *Conn) WriteTo(b []byte, a netip.AddrPort) error {
	var sa Sockaddr
	c.EncodeAddr(&sa, a)
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(p), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
	if e != 0 {
		return fmt.Errorf("udp sendto %v: %w", a, e)
	}
	return nil
}

// Batch is a preallocated recvmmsg or sendmmsg message array.
type Batch struct {
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	Bufs  [][]byte // Bufs[i] has len MaxDatagram
	N     int      // messages filled (send) or received (recv)
}

// NewBatch allocates n slots with their buffers.
func NewBatch(n int) *Batch {
	b := &Batch{
		msgs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		Bufs:  make([][]byte, n),
	}
	slab := make([]byte, n*MaxDatagram)
	for i := range b.msgs {
		b.Bufs[i] = slab[i*MaxDatagram : (i+1)*MaxDatagram : (i+1)*MaxDatagram]
		b.iovs[i].Base = &b.Bufs[i][0]
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.Iovlen = 1
		b.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// Cap returns the number of slots.
func (b *Batch) Cap() int { return len(b.msgs) }

// ErrWouldBlock is returned by TryRecv when no datagram is queued.
var ErrWouldBlock = errors.New("udpio: would block")

// TryRecv fills the batch with the datagrams already queued, without
// blocking (MSG_DONTWAIT); the per-core loop waits in Wait instead, so it can
// also be woken for ring work.
func (b *Batch) TryRecv(c *Conn) error {
	for i := range b.msgs {
		b.iovs[i].SetLen(MaxDatagram)
		b.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.msgs[i].Hdr.Flags = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.msgs[0])),
		uintptr(len(b.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		b.N = 0
		if e == unix.EAGAIN || e == unix.EINTR {
			return ErrWouldBlock
		}
		return e
	}
	b.N = int(n)
	return nil
}

// Datagram returns the i-th received datagram and its source.
func (b *Batch) Datagram(i int) ([]byte, netip.AddrPort) {
	return b.Bufs[i][:b.msgs[i].Len], decodeAddr(&b.names[i])
}

// Next returns the buffer of the next free send slot, or nil when full.
func (b *Batch) Next() []byte {
	if b.N == len(b.msgs) {
		return nil
	}
	return b.Bufs[b.N]
}

// Commit queues the slot returned by Next with n bytes for sa.
func (b *Batch) Commit(n int, sa *Sockaddr) {
	i := b.N
	b.iovs[i].SetLen(n)
	b.names[i] = sa.raw
	b.msgs[i].Hdr.Namelen = sa.len
	b.N++
}

// Flush sends every queued message with sendmmsg and empties the batch. It
// returns how many datagrams the kernel refused (dropped, counted by the
// caller); a full socket buffer is not retried, as a real-time relay must
// not stall on one slow path.
func (b *Batch) Flush(c *Conn) (dropped int) {
	off := 0
	for off < b.N {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.msgs[off])),
			uintptr(b.N-off), 0, 0, 0)
		if e != 0 {
			if e == unix.EINTR {
				continue
			}
			// The message at off failed (EAGAIN, unreachable, …): skip it.
			dropped++
			off++
			continue
		}
		off += int(n)
	}
	b.N = 0
	return dropped
}
