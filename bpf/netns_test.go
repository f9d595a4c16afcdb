package bpf

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/bpf/netnstest"
	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/route"
)

// client is one UDP socket in the client namespace: an ICE flow.
type client struct {
	fd    int
	addr  netip.AddrPort
	core  int // the core its ufrag names
	ufrag string
}

func newClient(t *testing.T, ip netip.Addr, core int) *client {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip.As4()}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return &client{fd: fd, addr: netip.AddrPortFrom(ip, uint16(sa.(*unix.SockaddrInet4).Port)), core: core,
		ufrag: route.UfragForCore(core, "nsprobe1")}
}

// TestNetnsPlacement proves placement across a veth pair between two
// network namespaces, with the SK_REUSEPORT program (bpf) and without it
// (hash): STUN flows, later datagrams of the same flows, and an SRTP
// publisher whose packets fan out to players owned by both cores.
//
// With BPF every flow lands on the core its ufrag names: the STUN upcalls
// carry that core, the per-core drop counters count each flow's later
// datagrams on it, and no datagram is handed between cores. Without BPF the
// kernel's reuseport hash places each flow (stable per 4-tuple); media
// still reaches every player, because the landing core hands each datagram
// to the owner named in the table, and the per-core counters show it.
func TestNetnsPlacement(t *testing.T) {
	netnstest.Require(t)
	for i, mode := range []string{"bpf", "hash"} {
		t.Run(mode, func(t *testing.T) { netnsPlacement(t, mode == "bpf", byte(10+i)) })
	}
}

func netnsPlacement(t *testing.T, withBPF bool, subnet byte) {
	tag := "h"
	cfg := fastpath.Config{Cores: 2, BPF: "off"}
	if withBPF {
		tag = "b"
		cfg.BPF = "on"
		cfg.Steer = func(fds []int) (io.Closer, error) { return AttachUfragSteering(fds) }
	}
	srv, cli, srvIP, cliIP := netnstest.Veth(t, tag, subnet)
	cfg.Addr = netip.AddrPortFrom(srvIP, 0)
	var e *fastpath.Engine
	netnstest.Do(t, srv, func() {
		var err error
		if e, err = fastpath.New(cfg); err != nil {
			t.Fatal(err)
		}
	})
	defer e.Close()
	t.Logf("engine: %+v", e.Status())
	e.Start()

	// Flows: a publisher owned by core 1, four players, 32 probes.
	var pub *client
	var players, probes []*client
	netnstest.Do(t, cli, func() {
		pub = newClient(t, cliIP, 1)
		for i := range 4 {
			players = append(players, newClient(t, cliIP, i%2))
		}
		for i := range 32 {
			probes = append(probes, newClient(t, cliIP, i%2))
		}
	})
	all := append(append([]*client{pub}, players...), probes...)
	srvAddr := &unix.SockaddrInet4{Port: e.Port(), Addr: srvIP.As4()}

	// STUN: every flow's first datagram carries its ufrag.
	landed := collectUpcalls(t, e, len(all), func() {
		for _, c := range all {
			if err := unix.Sendto(c.fd, stunRequest(c.ufrag+":client", false), 0, srvAddr); err != nil {
				t.Fatal(err)
			}
		}
	})
	mismatch := 0
	for _, c := range all {
		if landed[c.addr] != c.core {
			mismatch++
		}
	}
	t.Logf("STUN: %d of %d flows landed on a core other than their ufrag's", mismatch, len(all))
	if withBPF && mismatch != 0 {
		t.Fatalf("with BPF %d flows missed the core their ufrag names", mismatch)
	}
	if !withBPF && mismatch == 0 {
		t.Logf("kernel hash happened to agree with every ufrag")
	}

	// Later datagrams of each probe flow: no session, so each is counted
	// as unknown_peer on the core that received it.
	before := e.CoreStats()
	junk := append([]byte{0x80, 96}, make([]byte, 50)...)
	for _, c := range probes {
		for range 5 {
			_ = unix.Sendto(c.fd, junk, 0, srvAddr)
		}
	}
	time.Sleep(100 * time.Millisecond)
	after := e.CoreStats()
	for core := range 2 {
		want := uint64(0)
		for _, c := range probes {
			if landed[c.addr] == core {
				want += 5
			}
		}
		got := after[core].Drops[fastpath.DropUnknownPeer] - before[core].Drops[fastpath.DropUnknownPeer]
		t.Logf("core %d: %d later datagrams, %d expected from the flows its STUN landed on", core, got, want)
		if got != want {
			t.Errorf("core %d counted %d later datagrams, want %d: flows moved between cores", core, got, want)
		}
	}

	// Media: SRTP from the publisher to the four players.
	keys := randomKeys(t)
	e.Publish(mediaTable(keys, pub, players))
	time.Sleep(50 * time.Millisecond)
	before = e.CoreStats()
	sent := sendMedia(t, keys, pub, srvAddr, 100)
	time.Sleep(200 * time.Millisecond)
	after = e.CoreStats()
	for i, p := range players {
		checkPlayer(t, i, keys, p, sent)
	}
	for core := range 2 {
		tx := after[core].TxPackets - after[core].PLIOut - (before[core].TxPackets - before[core].PLIOut)
		handoffs := after[core].Handoffs - before[core].Handoffs
		t.Logf("core %d: sent %d media packets, handed %d datagrams to another core", core, tx, handoffs)
		if tx != 2*100 {
			t.Errorf("core %d sent %d packets, want 200 (its two players)", core, tx)
		}
		switch {
		case withBPF && handoffs != 0:
			t.Errorf("core %d handed off %d datagrams with BPF steering", core, handoffs)
		case !withBPF && landed[pub.addr] != 1 && core == landed[pub.addr] && handoffs != 100:
			t.Errorf("core %d received the publisher by hash but handed off %d of 100", core, handoffs)
		}
	}
}

// collectUpcalls runs send and returns the core each flow's STUN upcall came from.
func collectUpcalls(t *testing.T, e *fastpath.Engine, n int, send func()) map[netip.AddrPort]int {
	t.Helper()
	landed := map[netip.AddrPort]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.After(5 * time.Second)
		for {
			select {
			case u := <-e.Upcalls():
				mu.Lock()
				landed[u.From] = u.Core
				got := len(landed)
				mu.Unlock()
				e.Release(u)
				if got == n {
					return
				}
			case <-deadline:
				return
			}
		}
	}()
	send()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(landed) != n {
		t.Fatalf("%d of %d STUN requests reached control", len(landed), n)
	}
	return landed
}

func randomKeys(t *testing.T) *route.Keys {
	t.Helper()
	k := &route.Keys{Profile: srtp.ProtectionProfileAeadAes128Gcm, LocalKey: make([]byte, 16), LocalSalt: make([]byte, 12),
		RemoteKey: make([]byte, 16), RemoteSalt: make([]byte, 12)}
	for _, b := range [][]byte{k.LocalKey, k.LocalSalt, k.RemoteKey, k.RemoteSalt} {
		_, _ = rand.Read(b)
	}
	return k
}

// mediaTable is what control would publish: each session's core is the one
// its ufrag names.
func mediaTable(keys *route.Keys, pub *client, players []*client) *route.Table {
	b := route.NewBuilder(2, route.SessionID(len(players)+1), 1)
	st := route.Stream{ID: 1, Publisher: 1}
	ps := route.Session{ID: 1, Epoch: 1, Role: route.RolePublisher, Stream: 1, Peer: pub.addr, Keys: keys,
		Core: route.CoreOfUfrag(pub.ufrag)}
	ps.Tracks[route.KindVideo] = route.Track{SSRC: 0x1234, PT: 96, ClockRate: 90000}
	b.AddSession(ps, pub.addr)
	for i, p := range players {
		id := route.SessionID(i + 2)
		s := route.Session{ID: id, Epoch: 1, Role: route.RolePlayer, Stream: 1, Peer: p.addr, Keys: keys,
			Core: route.CoreOfUfrag(p.ufrag)}
		s.Tracks[route.KindVideo] = route.Track{SSRC: 0x5000 + uint32(i), PT: 102, ClockRate: 90000}
		b.AddSession(s, p.addr)
		st.Players = append(st.Players, id)
	}
	b.AddStream(st)
	return b.Table()
}

// sendMedia sends n SRTP packets from the publisher, paced in bursts of 8,
// and returns their payloads.
func sendMedia(t *testing.T, keys *route.Keys, pub *client, to unix.Sockaddr, n int) [][]byte {
	t.Helper()
	ctx, err := srtp.CreateContext(keys.RemoteKey, keys.RemoteSalt, keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	plain := make([]byte, 12+1000)
	for i := range n {
		plain[0], plain[1] = 0x80, 96
		binary.BigEndian.PutUint16(plain[2:], uint16(1000+i))
		binary.BigEndian.PutUint32(plain[4:], uint32(i*3000))
		binary.BigEndian.PutUint32(plain[8:], 0x1234)
		_, _ = rand.Read(plain[12:])
		enc, err := ctx.EncryptRTP(nil, plain, &rtp.Header{})
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Sendto(pub.fd, enc, 0, to); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, bytes.Clone(plain[12:]))
		if i%8 == 7 {
			time.Sleep(time.Millisecond)
		}
	}
	return sent
}

// checkPlayer decrypts what a player received and compares payloads.
func checkPlayer(t *testing.T, i int, keys *route.Keys, p *client, sent [][]byte) {
	t.Helper()
	ctx, err := srtp.CreateContext(keys.LocalKey, keys.LocalSalt, keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
		plain, err := ctx.DecryptRTP(nil, buf[:n], &rtp.Header{})
		if err != nil {
			t.Fatalf("player %d packet %d: %v", i, got, err)
		}
		if got >= len(sent) || !bytes.Equal(plain[12:], sent[got]) {
			t.Fatalf("player %d packet %d differs from what the publisher sent", i, got)
		}
		got++
	}
	if got != len(sent) {
		t.Errorf("player %d (core %d) got %d of %d packets", i, p.core, got, len(sent))
	}
}
