package bpf

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needBPF skips unless the process may load BPF programs (root: CI runs as root).
func needBPF(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs CAP_BPF and CAP_NET_ADMIN (run as root)")
	}
}

// stunRequest builds a Binding Request whose USERNAME is user; pad puts a
// PRIORITY attribute before it, so the program has to walk the attributes.
func stunRequest(user string, pad bool) []byte {
	b := make([]byte, 20, 64)
	binary.BigEndian.PutUint16(b[0:], 0x0001)
	binary.BigEndian.PutUint32(b[4:], 0x2112a442)
	copy(b[8:20], "txid-123456x")
	if pad {
		b = binary.BigEndian.AppendUint16(b, 0x0024) // PRIORITY
		b = binary.BigEndian.AppendUint16(b, 4)
		b = binary.BigEndian.AppendUint32(b, 0x6e7f00ff)
	}
	b = binary.BigEndian.AppendUint16(b, 0x0006)
	b = binary.BigEndian.AppendUint16(b, uint16(len(user)))
	b = append(b, user...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-20))
	return b
}

func udpSocket(t *testing.T, port int, reuse bool) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			t.Fatal(err)
		}
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

// drain counts the datagrams waiting on fd.
func drain(fd int) int {
	n := 0
	buf := make([]byte, 2048)
	for {
		if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err != nil {
			return n
		}
		n++
	}
}

// TestSteeringLoopback: a STUN request's ufrag picks the socket, and the
// flow's later datagrams follow it; unknown flows and ufrags that name no
// socket get the kernel hash.
func TestSteeringLoopback(t *testing.T) {
	needBPF(t)
	const socks, flows, follow = 3, 60, 5
	fds := make([]int, socks)
	port := 0
	for i := range fds {
		fds[i], port = udpSocket(t, port, true)
	}
	s, err := AttachUfragSteering(fds)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dst := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	rtp := append([]byte{0x80, 96}, make([]byte, 100)...)
	for f := range flows {
		cfd, _ := udpSocket(t, 0, false)
		core := f % socks
		ufrag := string("0123456789abcdef"[core>>4]) + string("0123456789abcdef"[core&15]) + "xyzw"
		if err := unix.Sendto(cfd, stunRequest(ufrag+":client", f%2 == 1), 0, dst); err != nil {
			t.Fatal(err)
		}
		for range follow {
			_ = unix.Sendto(cfd, rtp, 0, dst)
		}
		for i, fd := range fds {
			got, want := drain(fd), 0
			if i == core {
				want = 1 + follow
			}
			if got != want {
				t.Fatalf("flow %d (ufrag core %d): socket %d got %d datagrams, want %d", f, core, i, got, want)
			}
		}
	}
	// A ufrag naming core 0x7f (no such socket) and a flow never seen:
	// both land somewhere by hash, and are counted as such.
	cfd, _ := udpSocket(t, 0, false)
	_ = unix.Sendto(cfd, stunRequest("7fxyzw:client", false), 0, dst)
	cfd2, _ := udpSocket(t, 0, false)
	_ = unix.Sendto(cfd2, rtp, 0, dst)
	total := 0
	for _, fd := range fds {
		total += drain(fd)
	}
	c := s.Counters()
	t.Logf("counters: stun %d, flow %d, hash %d, select-fail %d", c[CountSTUN], c[CountFlow], c[CountHash], c[CountSelectFail])
	if total != 2 || c[CountSTUN] != flows+1 || c[CountFlow] != flows*follow || c[CountSelectFail] != 1 || c[CountHash] != 1 {
		t.Errorf("fallbacks: %d delivered, counters %v", total, c)
	}
}

func TestNoSockets(t *testing.T) {
	if _, err := AttachUfragSteering(nil); !errors.Is(err, ErrNoSockets) {
		t.Fatalf("got %v", err)
	}
}
