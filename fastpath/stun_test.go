package fastpath

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
)

const (
	testICEUser = "1srvufrag:cliufrag"
	testICEKey  = "0123456789abcdefghijklmnopqrstuv"
)

// bindingRequest is a browser-like consent refresh signed with key.
func bindingRequest(t testing.TB, user, key string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		stun.NewShortTermIntegrity(key), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// recvTimeout reads one datagram from fd, or nil after d.
func recvTimeout(t testing.TB, fd int, d time.Duration) []byte {
	t.Helper()
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2048)
	n, _, err := unix.Recvfrom(fd, b, 0)
	if err != nil {
		return nil
	}
	return b[:n]
}

// TestConsentOnCore: a consent refresh from a session's current address is
// answered by the core (a response pion accepts, Seen moved, nothing sent
// up); everything else the core cannot vouch for goes up to control, and
// so does every binding of a session still joining (no keys).
func TestConsentOnCore(t *testing.T) {
	e, err := New(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cli, moved, bare := newSink(t, 0), newSink(t, 0), newSink(t, 0)
	var seen atomic.Int64
	b := route.NewBuilder(1, 3, 1)
	joining := newSink(t, 0)
	b.AddSession(route.Session{ID: 1, Epoch: 1, Role: route.RolePlayer, Stream: 1, Peer: cli.addr,
		ICEUsername: testICEUser, ICEKey: testICEKey, Seen: &seen, Keys: newKeys(t, gcm)}, cli.addr, moved.addr)
	b.AddSession(route.Session{ID: 2, Epoch: 1, Role: route.RolePlayer, Stream: 1, Peer: bare.addr}, bare.addr)
	b.AddSession(route.Session{ID: 3, Epoch: 1, Role: route.RolePlayer, Stream: 1, Peer: joining.addr,
		ICEUsername: testICEUser, ICEKey: testICEKey, Seen: new(atomic.Int64)}, joining.addr)
	b.AddStream(route.Stream{ID: 1, Players: []route.SessionID{1, 2, 3}})
	e.Publish(b.Table())
	c := e.cores[0]
	round := func(from netip.AddrPort, d []byte) {
		c.begin()
		c.handle(d, from)
		c.finish()
	}
	upcalled := func() bool {
		select {
		case u := <-e.Upcalls():
			e.Release(u)
			return true
		default:
			return false
		}
	}

	req := bindingRequest(t, testICEUser, testICEKey)
	before := time.Now().UnixNano()
	round(cli.addr, req)
	resp := recvTimeout(t, cli.fd, time.Second)
	if resp == nil {
		t.Fatal("no response to a consent refresh from the current peer")
	}
	m := &stun.Message{Raw: resp}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess {
		t.Fatalf("response %v type %v", err, m.Type)
	}
	if err := stun.NewShortTermIntegrity(testICEKey).Check(m); err != nil {
		t.Fatal(err)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(m); err != nil || xa.Port != int(cli.addr.Port()) {
		t.Fatalf("XOR-MAPPED-ADDRESS %v %v", xa, err)
	}
	if got := seen.Load(); got < before-int64(time.Second) || got > time.Now().UnixNano()+int64(time.Second) {
		t.Fatalf("Seen = %d, want about %d", got, before)
	}
	if upcalled() {
		t.Fatal("an answered refresh also went up to control")
	}
	if n := e.Stats().STUNAnswered; n != 1 {
		t.Fatalf("STUNAnswered = %d", n)
	}

	for _, tc := range []struct {
		name string
		from netip.AddrPort
		req  []byte
	}{
		{"wrong key", cli.addr, bindingRequest(t, testICEUser, "another-password-entirely-xxxxxx")},
		{"other session's username", cli.addr, bindingRequest(t, "1srvufrag:intruder", testICEKey)},
		{"a valid address that is not the current peer", moved.addr, req},
		{"session without ICE credentials in the table", bare.addr, bindingRequest(t, testICEUser, testICEKey)},
		{"session still joining (no keys)", joining.addr, req},
	} {
		round(tc.from, tc.req)
		if !upcalled() {
			t.Errorf("%s: not sent up to control", tc.name)
		}
	}
	if n := e.Stats().STUNAnswered; n != 1 {
		t.Fatalf("STUNAnswered = %d after refused requests", n)
	}
	if resp := recvTimeout(t, cli.fd, 50*time.Millisecond); resp != nil {
		t.Fatalf("a refused request was answered: %x", resp)
	}

	zeroAllocs(t, "consent refresh answered on the core", func() { round(cli.addr, req) })
}
