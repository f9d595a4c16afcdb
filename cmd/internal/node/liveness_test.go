package node

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"
)

// muteConn is a pion peer's UDP socket that the test can silence (a cable
// pulled: writes vanish), counting the binding requests it was asked to send
// and stamping the last datagram it received.
type muteConn struct {
	net.PacketConn
	muted    atomic.Bool
	requests atomic.Int64
	lastRead atomic.Int64 // Unix ns
}

func (m *muteConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if len(b) >= 20 && b[0] < 4 && binary.BigEndian.Uint16(b) == 0x0001 {
		m.requests.Add(1)
	}
	if m.muted.Load() {
		return len(b), nil
	}
	return m.PacketConn.WriteTo(b, a)
}

// ReadFrom stamps each datagram with the time the kernel received it
// (SO_TIMESTAMPNS, set by newQuietPeer): stamped when pion's mux goroutine
// got to it, media queued before the server's cut counted as after it
// whenever that goroutine was descheduled on a loaded machine.
func (m *muteConn) ReadFrom(b []byte) (int, net.Addr, error) {
	var oob [64]byte
	n, oobn, _, a, err := m.PacketConn.(*net.UDPConn).ReadMsgUDP(b, oob[:])
	if err != nil {
		return n, nil, err
	}
	at := time.Now()
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, c := range msgs {
		if c.Header.Level == unix.SOL_SOCKET && c.Header.Type == unix.SCM_TIMESTAMPNS && len(c.Data) >= 16 {
			at = time.Unix(int64(binary.NativeEndian.Uint64(c.Data)), int64(binary.NativeEndian.Uint64(c.Data[8:])))
		}
	}
	m.lastRead.Store(at.UnixNano())
	return n, a, nil
}

// setTimestampNS asks the kernel to stamp c's datagrams with their
// receive time.
func setTimestampNS(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// newQuietPeer is a pion peer on a muteConn that sends no STUN once
// connected (keepalive interval 0, like libnice's indications-only mode
// minus the indications) and never gives up on ICE: only its media and
// RTCP (pion's default report interceptors) can keep it alive.
func newQuietPeer(t testing.TB) (*webrtc.PeerConnection, *muteConn) {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := setTimestampNS(udp.(*net.UDPConn)); err != nil {
		t.Fatal(err)
	}
	conn := &muteConn{PacketConn: udp}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	t.Cleanup(func() { _ = mux.Close() })
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(mux)
	se.SetICETimeouts(0, 0, 0)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc, conn
}

// TestLivenessAndConsent (issue 15 item 1, issue 19 consent), stun_timeout
// 3 s: a publisher that sends only SRTP and SRTCP after connecting, and a
// player that sends only SRTCP, stay alive for more than twice the timeout;
// when the player's socket goes silent it is cut within the bound and gets
// no more media, while a player that refreshes consent with STUN keeps
// playing byte-exact; the publisher, silenced in turn, is cut too.
func TestLivenessAndConsent(t *testing.T) {
	const timeout = 3 * time.Second
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "vhost short.example { rtc { enabled on; stun_timeout 3; } }")
	q := "vhost=short.example&app=live&stream=alive"
	pubPC, pubConn := newQuietPeer(t)
	pub := newTestPublisherPC(t, srv.url("/rtc/v1/whip/?"+q), pubPC)
	quietPC, quietConn := newQuietPeer(t)
	quiet := newTestPlayerPC(t, srv.url("/rtc/v1/whep/?"+q), quietPC)
	steady := newTestPlayer(t, srv, q)
	waitSessions(t, srv, 3)
	connected := pubConn.requests.Load() + quietConn.requests.Load()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pub.stream(ctx, t, h264, ogg)
		}
	}()
	defer func() { cancel(); <-done }()

	time.Sleep(2*timeout + time.Second)
	if _, live := srv.ctl.Stats(); live != 3 {
		t.Fatalf("%d sessions live after %v of media without STUN requests, want 3", live, 2*timeout+time.Second)
	}
	if n := pubConn.requests.Load() + quietConn.requests.Load() - connected; n != 0 {
		t.Fatalf("the quiet peers sent %d binding requests after connecting", n)
	}
	if got, _ := quiet.received(); len(got) < 100 {
		t.Fatalf("the quiet player got %d access units", len(got))
	}

	muted := time.Now()
	quietConn.muted.Store(true)
	waitSessionsWithin(t, srv, 2, timeout+3*time.Second)
	cut := time.Since(muted)
	steadyBefore, _ := steady.received()
	time.Sleep(time.Second)
	lastMedia := time.Duration(quietConn.lastRead.Load() - muted.UnixNano())
	t.Logf("silent player cut %v after it went quiet; its last datagram %v after", cut.Round(time.Millisecond), lastMedia.Round(time.Millisecond))
	if cut < timeout-time.Second {
		t.Errorf("silent player cut after %v, before its %v stun_timeout", cut, timeout)
	}
	if lastMedia > cut+200*time.Millisecond {
		t.Errorf("media reached the silent player %v after it went quiet, %v after its cut", lastMedia, lastMedia-cut)
	}
	if steadyAfter, _ := steady.received(); len(steadyAfter) < len(steadyBefore)+20 {
		t.Errorf("the STUN-refreshing player stalled: %d → %d access units", len(steadyBefore), len(steadyAfter))
	}

	sentAtMute := len(pub.sentAUs())
	muted = time.Now()
	pubConn.muted.Store(true)
	waitSessionsWithin(t, srv, 1, timeout+3*time.Second)
	if cut := time.Since(muted); cut < timeout-time.Second {
		t.Errorf("silent publisher cut after %v, before its %v stun_timeout", cut, timeout)
	}
	checkPrefixExact(t, pub.sentAUs()[:sentAtMute], steady)
}

// checkPrefixExact fails unless player got every unit of sent from its first
// match on, in order and intact (a few at the end may still be in flight).
func checkPrefixExact(t *testing.T, sent [][32]byte, player *testPlayer) {
	t.Helper()
	got, _ := player.received()
	m := indexOf(sent, got)
	if m == nil {
		t.Fatalf("player got none of %d access units", len(sent))
	}
	n := 0
	for j := 0; m.got+j < len(got) && m.sent+j < len(sent); j++ {
		if got[m.got+j] != sent[m.sent+j] {
			t.Fatalf("access unit %d differs", m.sent+j)
		}
		n++
	}
	if want := len(sent) - m.sent; n < want-5 {
		t.Fatalf("player got %d of the %d access units from its first", n, want)
	}
}

// TestConsentSpoofedSource (issue 19, consent): media goes only to an
// address that proved it holds the session's credentials. A stranger that
// knows the player's ICE usernames sends forged bindings (wrong key, no
// MESSAGE-INTEGRITY), indications, SRTP, SRTCP and DTLS from its own
// address while the player plays: it gets nothing back, not even an error
// (no amplification), and the player keeps playing byte-exact.
func TestConsentSpoofedSource(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	q := "app=live&stream=spoof"
	pub := newTestPublisher(t, srv, q)
	player := newTestPlayer(t, srv, q)
	user := sdpAttr(t, player.res.Answer, "ice-ufrag") + ":" + sdpAttr(t, player.pc.LocalDescription().SDP, "ice-ufrag")
	forged := forgedDatagrams(t, user)

	stranger, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.fp.Port()}
	got := make(chan int, 1)
	go func() {
		n, b := 0, make([]byte, 2048)
		for {
			_ = stranger.SetReadDeadline(time.Now().Add(8 * time.Second))
			if _, _, err := stranger.ReadFrom(b); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	before, _ := srv.ctl.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		case <-time.After(10 * time.Millisecond):
			_, _ = stranger.WriteTo(forged[i%len(forged)], server)
			continue
		}
		break
	}
	after, _ := srv.ctl.Stats()
	_ = stranger.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n := <-got; n != 0 {
		t.Errorf("the stranger got %d datagrams", n)
	}
	if after.STUNRejected <= before.STUNRejected {
		t.Errorf("forged bindings not counted as rejected (%d → %d)", before.STUNRejected, after.STUNRejected)
	}
	time.Sleep(300 * time.Millisecond)
	checkByteExact(t, pub, player)
}

// forgedDatagrams are what a stranger without the session's ice-pwd can
// send: bindings with the right USERNAME (a wrong key, none at all, a
// nomination), an indication, and media and DTLS-looking records.
func forgedDatagrams(t *testing.T, user string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, setters := range [][]stun.Setter{
		{stun.NewUsername(user), stun.NewShortTermIntegrity("not-the-session-password-at-all"), stun.Fingerprint},
		{stun.NewUsername(user), stun.Fingerprint},
		{stun.NewUsername(user), ice.UseCandidate(), stun.NewShortTermIntegrity("guess"), stun.Fingerprint},
	} {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Raw)
	}
	ind, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	rtp := append([]byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44}, make([]byte, 100)...)
	rtcp := append([]byte{0x81, 201, 0, 7, 0x11, 0x22, 0x33, 0x44}, make([]byte, 40)...)
	dtls := append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1}, make([]byte, 60)...)
	return append(out, ind.Raw, rtp, rtcp, dtls)
}

// sdpAttr returns the value of the first a=name: line of an SDP.
func sdpAttr(t *testing.T, sdp, name string) string {
	t.Helper()
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a="+name+":"); ok {
			return v
		}
	}
	t.Fatalf("no a=%s in\n%s", name, sdp)
	return ""
}
