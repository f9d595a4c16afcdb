package fastpath

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
)

// Test media: one H.264-like video track, 1200-byte SRTP packets on the wire.
const (
	pubSSRC     = 0x11112222
	pubPT       = 96
	playerPT    = 102
	wireSize    = 1200
	gcmTagLen   = 16
	payloadSize = wireSize - 12 - gcmTagLen
)

var (
	gcm = srtp.ProtectionProfileAeadAes128Gcm
	cm  = srtp.ProtectionProfileAes128CmHmacSha1_80
)

func newKeys(t testing.TB, p srtp.ProtectionProfile) *route.Keys {
	t.Helper()
	kl, _ := p.KeyLen()
	sl, _ := p.SaltLen()
	k := &route.Keys{Profile: p, LocalKey: make([]byte, kl), LocalSalt: make([]byte, sl),
		RemoteKey: make([]byte, kl), RemoteSalt: make([]byte, sl)}
	for _, b := range [][]byte{k.LocalKey, k.LocalSalt, k.RemoteKey, k.RemoteSalt} {
		_, _ = rand.Read(b)
	}
	return k
}

// sink is a UDP socket on 127.0.0.1 that a player or publisher sits on.
type sink struct {
	fd   int
	addr netip.AddrPort
}

// newSink opens a socket; rcvbuf > 0 sets SO_RCVBUF (small: the kernel
// drops at enqueue, as in the floor measurements of performance-anchors §3.5).
func newSink(t testing.TB, rcvbuf int) sink {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if rcvbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	return sink{fd: fd, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))}
}

// rig is an engine with one publisher (session 1) and subs players
// (sessions 2…) on stream 1, all with real sockets on loopback.
type rig struct {
	e       *Engine
	keys    *route.Keys
	pub     sink
	players []sink
	pubCtx  *srtp.Context // what the publisher encrypts with
	hdr     rtp.Header
	seq     uint16
	plain   []byte
	marker  bool // next sets the RTP marker bit (the last packet of a frame)
}

type rigOptions struct {
	cfg        Config
	subs       int
	profile    srtp.ProtectionProfile
	pubCore    int
	playerCore func(i int) int
	rcvbuf     int
	// layers > 0 makes the publisher simulcast (VP8, RIDs h, m, l, no
	// signalled video SSRC) and player i follow layer i%layers (layers_test.go).
	layers int
	auto   bool        // the players' layers follow their loss (LayerAuto)
	codec  route.Codec // the publisher's video codec (svc_test.go: VP9)
	// dd is the publisher's AV1 dependency descriptor id, playerDD and
	// temporal player i's id and cap (svcav1_test.go).
	dd       uint8
	playerDD func(i int) uint8
	temporal func(i int) uint8
	twcc     uint8 // the players' transport-cc extension id (playerbwe_test.go)
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.cfg.Addr == (netip.AddrPort{}) {
		o.cfg.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	}
	if o.profile == 0 {
		o.profile = gcm
	}
	if o.playerCore == nil {
		o.playerCore = func(int) int { return 0 }
	}
	e, err := New(o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	r := &rig{e: e, keys: newKeys(t, o.profile), pub: newSink(t, 0)}
	r.pubCtx, err = srtp.CreateContext(r.keys.RemoteKey, r.keys.RemoteSalt, o.profile)
	if err != nil {
		t.Fatal(err)
	}
	b := route.NewBuilder(1, route.SessionID(o.subs+1), 1)
	st := route.Stream{ID: 1, Publisher: 1}
	pub := route.Session{ID: 1, Epoch: 1, Role: route.RolePublisher, Stream: 1, Peer: r.pub.addr,
		Keys: r.keys, Core: o.pubCore, DDExt: o.dd}
	pub.Tracks[route.KindVideo] = route.Track{SSRC: pubSSRC, PT: pubPT, ClockRate: 90000, Codec: o.codec}
	if o.layers > 0 {
		pub.Tracks[route.KindVideo] = route.Track{PT: pubPT, ClockRate: 90000, Codec: route.CodecVP8}
		pub.Simulcast = route.Simulcast{N: uint8(o.layers), RIDExt: simRIDExt, RIDs: [route.MaxLayers]string{"h", "m", "l"}}
	}
	b.AddSession(pub, r.pub.addr)
	for i := range o.subs {
		s := newSink(t, o.rcvbuf)
		r.players = append(r.players, s)
		id := route.SessionID(i + 2)
		ps := route.Session{ID: id, Epoch: 1, Role: route.RolePlayer, Stream: 1, Peer: s.addr,
			Keys: r.keys, Core: o.playerCore(i)}
		ps.Tracks[route.KindVideo] = route.Track{SSRC: 0xa0000000 + uint32(i), PT: playerPT, ClockRate: 90000}
		if o.layers > 0 {
			ps.Layer = uint8(i % o.layers)
		}
		ps.LayerAuto, ps.TWCCExt = o.auto, o.twcc
		if o.playerDD != nil {
			ps.DDExt = o.playerDD(i)
		}
		if o.temporal != nil {
			ps.Temporal = o.temporal(i)
		}
		b.AddSession(ps, s.addr)
		st.Players = append(st.Players, id)
	}
	b.AddStream(st)
	e.Publish(b.Table())
	r.plain = make([]byte, 12+payloadSize)
	return r
}

// next encrypts the publisher's next packet into dst (cap ≥ 1500) and
// returns it; payload byte 0..3 carry the sequence number for checks.
func (r *rig) next(dst []byte) []byte {
	r.seq++
	p := r.plain
	p[0], p[1] = 0x80, pubPT
	if r.marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], r.seq)
	binary.BigEndian.PutUint32(p[4:], uint32(r.seq)*3000)
	binary.BigEndian.PutUint32(p[8:], pubSSRC)
	binary.BigEndian.PutUint32(p[12:], uint32(r.seq))
	enc, err := r.pubCtx.EncryptRTP(dst[:0], p, &r.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// drive runs one round on core i with the given datagrams from the publisher.
func (r *rig) drive(i int, dgrams ...[]byte) {
	c := r.e.cores[i]
	c.begin()
	for _, d := range dgrams {
		c.handle(d, r.pub.addr)
	}
	c.finish()
}

// playerRTCPContext is what a player encrypts its RTCP with (every rig
// session shares one key set; the server's remote keys).
func (r *rig) playerRTCPContext(t testing.TB) *srtp.Context {
	t.Helper()
	ctx, err := srtp.CreateContext(r.keys.RemoteKey, r.keys.RemoteSalt, r.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
