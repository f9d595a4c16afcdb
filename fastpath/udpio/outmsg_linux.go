package udpio

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Out's messages one by one, for a sender other than sendmmsg (the
// AF_XDP TX ring, fastpath/xskio): Msg reads message i, SendOne sends it
// through the socket after all, Reset empties the batch.

// Msg returns message i of the batch (i < N): its bytes, the size of each
// datagram in it (a GSO run holds several, the last one may be shorter;
// seg == len(b) otherwise) and its destination.
func (o *Out) Msg(i int) (b []byte, seg int, dst netip.AddrPort) {
	start := int(uintptr(unsafe.Pointer(o.iovs[i].Base)) - uintptr(unsafe.Pointer(&o.arena[0])))
	b = o.arena[start : start+int(o.iovs[i].Len)]
	seg = len(b)
	if o.segs[i] > 1 {
		seg = int(*(*uint16)(unsafe.Pointer(&o.ctrl[i*cmsgWords+2])))
	}
	return b, seg, decodeAddr(&o.names[i])
}

// SendOne sends message i through c with sendmsg (its GSO run too), and
// returns the datagrams sent and dropped.
func (o *Out) SendOne(c *Conn, i int) (sent, dropped int) {
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&o.msgs[i].Hdr)), 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == 0:
			return int(o.segs[i]), 0
		case o.segs[i] > 1 && (e == unix.EIO || e == unix.EINVAL || e == unix.EOPNOTSUPP):
			return o.sendSplit(c, i)
		}
		return 0, int(o.segs[i])
	}
}

// Reset empties the batch without sending it.
func (o *Out) Reset() { o.N, o.cur, o.Packets, o.runOpen = 0, 0, 0, false }
