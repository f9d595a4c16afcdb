package xskio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Hop is how a frame to one destination leaves: from Src (the route's
// preferred source), the interface's MAC, to the next hop's MAC. OK is
// false when the kernel routes the destination out of another interface or
// the neighbour is not resolved: such datagrams take the socket.
type Hop struct {
	Src            netip.Addr
	SrcMAC, DstMAC [6]byte
	OK             bool
}

// Hops resolves destinations to their Hop for one interface and keeps the
// answers fresh: a destination first looked up is resolved at once by the
// resolver goroutine (the lookup itself misses and the datagram falls
// back), and every known destination is resolved again each
// RefreshInterval, so a changed route or neighbour MAC is followed within
// it. Readers see an immutable map swapped atomically.
type Hops struct {
	ifindex int
	mac     [6]byte
	addrs   []netip.Addr // the interface's, when a route has no preferred source
	table   atomic.Pointer[map[netip.Addr]Hop]
	want    chan netip.Addr
	stop    chan struct{}
	done    sync.WaitGroup
	nl      int
	seq     uint32
	buf     []byte
	// Refreshes counts table rebuilds; Errors netlink failures.
	Refreshes, Errors atomic.Uint64
}

// RefreshInterval is how often Hops re-reads the kernel's tables.
const RefreshInterval = time.Second

// maxHops bounds the destinations Hops tracks (distinct peer addresses).
const maxHops = 1 << 16

// NewHops opens a netlink socket and starts resolving for interface
// ifindex. It must be called in the interface's network namespace.
func NewHops(ifindex int) (*Hops, error) {
	ifc, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("xskio: interface %d: %w", ifindex, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("xskio: interface %s has no Ethernet address", ifc.Name)
	}
	h := &Hops{ifindex: ifindex, want: make(chan netip.Addr, 1024), stop: make(chan struct{}), buf: make([]byte, 1<<16)}
	copy(h.mac[:], ifc.HardwareAddr)
	if as, err := ifc.Addrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					h.addrs = append(h.addrs, ip.Unmap())
				}
			}
		}
	}
	h.nl, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("xskio: netlink socket: %w", err)
	}
	if err := unix.Bind(h.nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(h.nl)
		return nil, fmt.Errorf("xskio: netlink bind: %w", err)
	}
	tv := unix.NsecToTimeval(int64(time.Second))
	_ = unix.SetsockoptTimeval(h.nl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	empty := map[netip.Addr]Hop{}
	h.table.Store(&empty)
	h.done.Add(1)
	go h.run()
	return h, nil
}

// NewStaticHops is a Hops with a fixed table and no resolver (no netlink
// socket): for tests, and for hosts whose next hops never change.
func NewStaticHops(table map[netip.Addr]Hop) *Hops {
	h := &Hops{nl: -1, want: make(chan netip.Addr, 1), stop: make(chan struct{})}
	h.table.Store(&table)
	return h
}

// Lookup returns dst's hop; a miss asks the resolver for it.
func (h *Hops) Lookup(dst netip.Addr) (Hop, bool) {
	hop, ok := (*h.table.Load())[dst]
	if !ok {
		select {
		case h.want <- dst:
		default:
		}
	}
	return hop, ok
}

// Close stops the resolver and closes its socket.
func (h *Hops) Close() {
	close(h.stop)
	h.done.Wait()
	if h.nl >= 0 {
		unix.Close(h.nl)
	}
}

func (h *Hops) run() {
	defer h.done.Done()
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case a := <-h.want:
			cur := *h.table.Load()
			if _, ok := cur[a]; ok || len(cur) >= maxHops {
				continue
			}
			h.publish(cur, a)
		case <-t.C:
			h.publish(*h.table.Load(), netip.Addr{})
		}
	}
}

// publish resolves every destination of cur, and extra if valid, and
// swaps the table when anything changed.
func (h *Hops) publish(cur map[netip.Addr]Hop, extra netip.Addr) {
	if len(cur) == 0 && !extra.IsValid() {
		return
	}
	neigh, err := h.neighbours()
	if err != nil {
		h.Errors.Add(1)
		return
	}
	next := make(map[netip.Addr]Hop, len(cur)+1)
	changed := false
	for a, old := range cur {
		next[a] = h.resolve(a, neigh)
		changed = changed || next[a] != old
	}
	if extra.IsValid() {
		next[extra] = h.resolve(extra, neigh)
		changed = true
	}
	if changed {
		h.table.Store(&next)
		h.Refreshes.Add(1)
	}
}

// resolve finds dst's route, then its next hop's MAC in neigh.
func (h *Hops) resolve(dst netip.Addr, neigh map[netip.Addr][6]byte) Hop {
	oif, gw, src, err := h.route(dst)
	if err != nil {
		h.Errors.Add(1)
		return Hop{}
	}
	if oif != h.ifindex {
		return Hop{}
	}
	if !src.IsValid() {
		for _, a := range h.addrs {
			if a.Is4() == dst.Is4() {
				src = a
				break
			}
		}
	}
	next := dst
	if gw.IsValid() {
		next = gw
	}
	mac, ok := neigh[next]
	if !ok || !src.IsValid() {
		return Hop{}
	}
	return Hop{Src: src, SrcMAC: h.mac, DstMAC: mac, OK: true}
}

// errNetlink is a netlink error reply.
var errNetlink = errors.New("xskio: netlink error reply")

// request sends one rtnetlink request and returns its reply messages.
func (h *Hops) request(typ, flags uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	h.seq++
	hdr := unix.NlMsghdr{Len: uint32(unix.NLMSG_HDRLEN + len(body)), Type: typ, Flags: unix.NLM_F_REQUEST | flags, Seq: h.seq}
	msg := make([]byte, 0, hdr.Len)
	msg = append(msg, (*[unix.NLMSG_HDRLEN]byte)(unsafe.Pointer(&hdr))[:]...)
	msg = append(msg, body...)
	if err := unix.Sendto(h.nl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []syscall.NetlinkMessage
	for {
		n, _, err := unix.Recvfrom(h.nl, h.buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(h.buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != h.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 && *(*int32)(unsafe.Pointer(&m.Data[0])) == 0 {
					return out, nil // an ACK
				}
				return nil, errNetlink
			}
			out = append(out, m)
			if flags&unix.NLM_F_DUMP == 0 {
				return out, nil
			}
		}
	}
}

// route asks the kernel how it sends to dst (RTM_GETROUTE).
func (h *Hops) route(dst netip.Addr) (oif int, gw, src netip.Addr, err error) {
	rt := unix.RtMsg{Family: unix.AF_INET, Dst_len: 32}
	a := dst.AsSlice()
	if dst.Is6() {
		rt.Family, rt.Dst_len = unix.AF_INET6, 128
	}
	body := make([]byte, 0, 64)
	body = append(body, (*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:]...)
	body = append(body, rtattr(unix.RTA_DST, a)...)
	msgs, err := h.request(unix.RTM_GETROUTE, 0, body)
	if err != nil {
		return 0, gw, src, err
	}
	for _, m := range msgs {
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return 0, gw, src, err
		}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.RTA_OIF:
				if len(at.Value) >= 4 {
					oif = int(*(*uint32)(unsafe.Pointer(&at.Value[0])))
				}
			case unix.RTA_GATEWAY:
				gw, _ = netip.AddrFromSlice(at.Value)
			case unix.RTA_PREFSRC:
				src, _ = netip.AddrFromSlice(at.Value)
			}
		}
	}
	return oif, gw.Unmap(), src.Unmap(), nil
}

// neighbours dumps the interface's resolved neighbours (RTM_GETNEIGH).
func (h *Hops) neighbours() (map[netip.Addr][6]byte, error) {
	nd := unix.NdMsg{Family: unix.AF_UNSPEC, Ifindex: int32(h.ifindex)}
	msgs, err := h.request(unix.RTM_GETNEIGH, unix.NLM_F_DUMP, (*[unix.SizeofNdMsg]byte)(unsafe.Pointer(&nd))[:])
	if err != nil {
		return nil, err
	}
	const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	out := map[netip.Addr][6]byte{}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofNdMsg {
			continue
		}
		n := (*unix.NdMsg)(unsafe.Pointer(&m.Data[0]))
		if int(n.Ifindex) != h.ifindex || n.State&usable == 0 {
			continue
		}
		var ip netip.Addr
		var mac []byte
		for _, at := range parseAttrs(m.Data[unix.SizeofNdMsg:]) {
			switch at.typ {
			case unix.NDA_DST:
				ip, _ = netip.AddrFromSlice(at.val)
			case unix.NDA_LLADDR:
				mac = at.val
			}
		}
		if ip.IsValid() && len(mac) == 6 {
			out[ip.Unmap()] = [6]byte(mac)
		}
	}
	return out, nil
}

type attr struct {
	typ uint16
	val []byte
}

// parseAttrs reads rtattrs (the standard library parses them only after
// the route and address headers it knows, not after ndmsg).
func parseAttrs(b []byte) []attr {
	var out []attr
	for len(b) >= unix.SizeofRtAttr {
		l := int(*(*uint16)(unsafe.Pointer(&b[0])))
		if l < unix.SizeofRtAttr || l > len(b) {
			break
		}
		out = append(out, attr{typ: *(*uint16)(unsafe.Pointer(&b[2])), val: b[unix.SizeofRtAttr:l]})
		l = (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

func rtattr(typ uint16, val []byte) []byte {
	l := unix.SizeofRtAttr + len(val)
	b := make([]byte, (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1))
	*(*uint16)(unsafe.Pointer(&b[0])) = uint16(l)
	*(*uint16)(unsafe.Pointer(&b[2])) = typ
	copy(b[unix.SizeofRtAttr:], val)
	return b
}
