package udpio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// GSO limits. The kernel accepts up to UDP_MAX_SEGMENTS segments (64 before
// Linux 6.9) and one UDP datagram's worth of payload per send.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65000
	cmsgWords      = 3 // CmsgSpace(2) = 24 bytes
)

// Out is a per-core send batch over one contiguous arena. Datagrams for the
// same destination committed back to back with the same size (the last one
// may be shorter) are chained into one sendmmsg entry that carries a
// UDP_SEGMENT cmsg (UDP GSO): the kernel walks its send path once per run
// instead of once per datagram. Without GSO every datagram is its own entry.
//
// An Out belongs to one goroutine; everything is allocated by NewOut.
type Out struct {
	msgs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6
	ctrl    []uint64 // cmsgWords per message, 8-byte aligned
	segs    []uint16 // datagrams per message
	arena   []byte
	cur     int
	N       int // messages queued
	Packets int // datagrams queued
	gso     bool
	runKey  uint64
	runSeg  int
	runOpen bool
}

// NewOut allocates msgs entries over an arena of arenaBytes.
func NewOut(msgs, arenaBytes int, gso bool) *Out {
	if arenaBytes < MaxDatagram {
		arenaBytes = MaxDatagram
	}
	o := &Out{
		msgs:  make([]unix.Mmsghdr, msgs),
		iovs:  make([]unix.Iovec, msgs),
		names: make([]unix.RawSockaddrInet6, msgs),
		ctrl:  make([]uint64, msgs*cmsgWords),
		segs:  make([]uint16, msgs),
		arena: make([]byte, arenaBytes),
		gso:   gso,
	}
	for i := range o.msgs {
		o.msgs[i].Hdr.Iov = &o.iovs[i]
		o.msgs[i].Hdr.Iovlen = 1
		o.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&o.names[i]))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&o.ctrl[i*cmsgWords]))
		h.Level = unix.IPPROTO_UDP
		h.Type = unix.UDP_SEGMENT
		h.SetLen(unix.CmsgLen(2))
	}
	return o
}

// GSO reports whether runs are chained into GSO sends.
func (o *Out) GSO() bool { return o.gso }

// SetGSO turns chaining on or off for the datagrams committed from now on.
func (o *Out) SetGSO(on bool) { o.gso = on; o.runOpen = false }

// Buf returns room for one datagram at the arena cursor (len and cap
// MaxDatagram), or nil when the batch is full and must be flushed.
func (o *Out) Buf() []byte {
	if o.N == len(o.msgs) || o.cur+MaxDatagram > len(o.arena) {
		return nil
	}
	return o.arena[o.cur : o.cur+MaxDatagram : o.cur+MaxDatagram]
}

// Commit queues the first n bytes of the last Buf for sa. key names the
// destination (a session and its epoch): consecutive datagrams with the same
// key and size join one GSO send.
func (o *Out) Commit(n int, sa *Sockaddr, key uint64) {
	if o.gso && o.runOpen && key == o.runKey && n <= o.runSeg {
		i := o.N - 1
		if o.segs[i] < maxGSOSegments && int(o.iovs[i].Len)+n <= maxGSOBytes {
			o.iovs[i].Len += uint64(n)
			o.segs[i]++
			if o.segs[i] == 2 {
				*(*uint16)(unsafe.Pointer(&o.ctrl[i*cmsgWords+2])) = uint16(o.runSeg)
				o.msgs[i].Hdr.Control = (*byte)(unsafe.Pointer(&o.ctrl[i*cmsgWords]))
				o.msgs[i].Hdr.SetControllen(cmsgWords * 8)
			}
			if n < o.runSeg {
				o.runOpen = false // only the last segment may be shorter
			}
			o.cur += n
			o.Packets++
			return
		}
	}
	i := o.N
	o.iovs[i].Base = &o.arena[o.cur]
	o.iovs[i].SetLen(n)
	o.names[i] = sa.raw
	o.msgs[i].Hdr.Namelen = sa.len
	o.msgs[i].Hdr.Control = nil
	o.msgs[i].Hdr.Controllen = 0
	o.segs[i] = 1
	o.N++
	o.cur += n
	o.Packets++
	o.runKey, o.runSeg, o.runOpen = key, n, true
}

// Flush sends everything queued with sendmmsg and empties the batch. It
// returns the datagrams sent and dropped, and whether a GSO send failed: then
// GSO is off for this Out from now on, and that run went out datagram by
// datagram (the one-way fallback of wireguard-go and quic-go).
func (o *Out) Flush(c *Conn) (sent, dropped int, gsoFailed bool) {
	off := 0
	for off < o.N {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&o.msgs[off])),
			uintptr(o.N-off), 0, 0, 0)
		if e != 0 {
			if e == unix.EINTR {
				continue
			}
			if o.segs[off] > 1 && (e == unix.EIO || e == unix.EINVAL || e == unix.EOPNOTSUPP) {
				gsoFailed = true
				o.gso = false
				s, d := o.sendSplit(c, off)
				sent += s
				dropped += d
			} else {
				dropped += int(o.segs[off]) // EAGAIN, unreachable…: skip, never stall
			}
			off++
			continue
		}
		for j := off; j < off+int(n); j++ {
			sent += int(o.segs[j])
		}
		off += int(n)
	}
	o.N, o.cur, o.Packets, o.runOpen = 0, 0, 0, false
	return sent, dropped, gsoFailed
}

// sendSplit sends message i's segments one sendto each.
func (o *Out) sendSplit(c *Conn, i int) (sent, dropped int) {
	total := int(o.iovs[i].Len)
	seg := int(*(*uint16)(unsafe.Pointer(&o.ctrl[i*cmsgWords+2])))
	start := int(uintptr(unsafe.Pointer(o.iovs[i].Base)) - uintptr(unsafe.Pointer(&o.arena[0])))
	for off := 0; off < total; off += seg {
		n := min(seg, total-off)
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&o.arena[start+off])), uintptr(n), 0,
			uintptr(unsafe.Pointer(&o.names[i])), uintptr(o.msgs[i].Hdr.Namelen))
		if e != 0 {
			dropped++
		} else {
			sent++
		}
	}
	return sent, dropped
}

// GSOCounts returns how many queued messages are GSO runs and how many
// datagrams they hold (for the per-core counters).
func (o *Out) GSOCounts() (sends, segments int) {
	for _, s := range o.segs[:o.N] {
		if s > 1 {
			sends++
			segments += int(s)
		}
	}
	return sends, segments
}
