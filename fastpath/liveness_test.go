package fastpath

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/stun/v4"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// TestLivenessOnCore: every packet that authenticates (SRTP or SRTCP that
// decrypts, a binding indication from a bound address) stamps its
// session's Seen on the core, without an upcall and without allocating;
// what does not authenticate leaves the stamp alone.
func TestLivenessOnCore(t *testing.T) {
	r := newRig(t, rigOptions{subs: 1, cfg: Config{Cores: 1}})
	var pubSeen, playSeen atomic.Int64
	old := r.e.Table()
	b := route.NewBuilder(2, 2, 1)
	pub, player := old.Sessions[1], old.Sessions[2]
	pub.Seen, player.Seen = &pubSeen, &playSeen
	b.AddSession(pub, r.pub.addr)
	b.AddSession(player, r.players[0].addr)
	b.AddStream(old.Streams[1])
	r.e.Publish(b.Table())
	c := r.e.cores[0]
	round := func(from netip.AddrPort, d []byte) {
		c.begin()
		c.handle(d, from)
		c.finish()
	}
	c.begin() // load the table
	c.finish()
	stamped := func(seen *atomic.Int64, id route.SessionID) bool {
		got := seen.Swap(0) != 0
		c.sess[id].seenAt = 0 // let the next packet store again at once
		return got
	}
	upcalled := func() bool {
		select {
		case u := <-r.e.Upcalls():
			r.e.Release(u)
			return true
		default:
			return false
		}
	}

	buf := make([]byte, 1500)
	ind, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	ctx := r.playerRTCPContext(t)
	pli := make([]byte, 12)
	pli[0], pli[1] = 0x80|rtcpx.FmtPLI, rtcpx.TypePSFB
	binary.BigEndian.PutUint16(pli[2:], 2)
	binary.BigEndian.PutUint32(pli[8:], pubSSRC)
	var rh rtcp.Header
	srtcp, err := ctx.EncryptRTCP(nil, pli, &rh)
	if err != nil {
		t.Fatal(err)
	}
	forged := r.next(make([]byte, 1500))
	forged[len(forged)-1] ^= 0xff // the tag no longer matches

	for _, tc := range []struct {
		name  string
		from  netip.AddrPort
		d     []byte
		seen  *atomic.Int64
		id    route.SessionID
		alive bool
	}{
		{"publisher SRTP", r.pub.addr, r.next(buf), &pubSeen, 1, true},
		{"player SRTCP", r.players[0].addr, srtcp, &playSeen, 2, true},
		{"player binding indication", r.players[0].addr, ind.Raw, &playSeen, 2, true},
		{"SRTP that fails authentication", r.pub.addr, forged, &pubSeen, 1, false},
		{"binding indication from an unbound address", mustAddr("127.0.0.1:9"), ind.Raw, &playSeen, 2, false},
	} {
		stamped(tc.seen, tc.id)
		round(tc.from, tc.d)
		if got := stamped(tc.seen, tc.id); got != tc.alive {
			t.Errorf("%s: stamped = %v, want %v", tc.name, got, tc.alive)
		}
		if up := upcalled(); up && tc.alive {
			t.Errorf("%s: went up to control", tc.name)
		}
	}
	if n := r.e.Stats().STUNIndications; n != 1 {
		t.Fatalf("STUNIndications = %d, want 1", n)
	}

	c.sess[1].seenAt = 0
	round(r.pub.addr, r.next(buf))
	first := pubSeen.Load()
	round(r.pub.addr, r.next(buf))
	if pubSeen.Load() != first {
		t.Fatal("a second packet within seenEvery stored the stamp again")
	}
	zeroAllocs(t, "SRTP stamping Seen", func() { round(r.pub.addr, r.next(buf)) })
	zeroAllocs(t, "binding indication as keepalive", func() { round(r.players[0].addr, ind.Raw) })
}
