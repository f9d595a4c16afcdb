package node

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// TestAddressMovesCapped (issue 19): a peer holding a session's ICE
// credentials moves it from address to address with verified bindings (as
// NAT rebinding does). Each of the first 4 moves is answered and the media
// follows it to the new address; the 5th, within 10 s, gets no answer, is
// counted (fanout_limit_refusals_total{limit="address_moves"}) and gets no
// media, which keeps going to the address bound before it.
func TestAddressMovesCapped(t *testing.T) {
	const moves = 4 // control's maxAddrMoves per addrMoveWindow (10 s)
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	q := "app=live&stream=moves"
	pub := newTestPublisher(t, srv, q)
	player := newTestPlayerPC(t, srv.url("/rtc/v1/whep/?"+q), quietPeer(t))
	user := sdpAttr(t, player.res.Answer, "ice-ufrag") + ":" + sdpAttr(t, player.pc.LocalDescription().SDP, "ice-ufrag")
	pwd := sdpAttr(t, player.res.Answer, "ice-pwd")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go pub.stream(ctx, t, h264, ogg)

	server := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.fp.Port()}
	socks := make([]*movedSock, moves+1)
	for i := range socks {
		socks[i] = newMovedSock(t)
	}
	for i, s := range socks[:moves] {
		if !s.bind(t, server, user, pwd, 3*time.Second) {
			t.Fatalf("move %d: no binding answer", i+1)
		}
		waitUntil(t, 5*time.Second, "media at the moved-to address", func() bool { return s.media.Load() > 0 })
	}
	bound, late := socks[moves-1], socks[moves]
	if late.bind(t, server, user, pwd, time.Second) {
		t.Fatalf("move %d within the window was answered", moves+1)
	}
	sent := late.sent.Load()
	before := bound.media.Load()
	time.Sleep(500 * time.Millisecond)
	if n := late.media.Load(); n != 0 {
		t.Errorf("the refused address got %d media datagrams", n)
	}
	if bound.media.Load() <= before {
		t.Errorf("media to the bound address stopped (%d datagrams before the refused move, %d after)", before, bound.media.Load())
	}
	for i, s := range socks {
		t.Logf("address %d: %d binding requests, %d answers, %d media datagrams", i+1, s.sent.Load(), s.answers.Load(), s.media.Load())
		if s.answers.Load() > s.sent.Load() { // one answer per request, no more (it was two)
			t.Errorf("address %d: %d answers to %d requests", i+1, s.answers.Load(), s.sent.Load())
		}
	}
	m := scrape(t, srv)
	if got := m[`fanout_limit_refusals_total{limit="address_moves"}`]; got != float64(sent) {
		t.Errorf(`fanout_limit_refusals_total{limit="address_moves"} = %v, want %d (each refused binding)`, got, sent)
	}
}

// quietPeer is newPeer with no ICE keepalives: the test's own sockets
// move the session, and the player's checks must not move it back.
func quietPeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	pc := newPeerWith(t, peerOptions{settings: func(se *webrtc.SettingEngine) {
		se.SetICETimeouts(time.Minute, time.Minute, 0) // 0: no keepalive checks
	}})
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// movedSock is a UDP socket that binds a session with its credentials and
// counts the binding answers and the other datagrams (SRTP) it receives.
type movedSock struct {
	c              net.PacketConn
	answers, media atomic.Int64
	sent           atomic.Int64 // binding requests
}

func newMovedSock(t *testing.T) *movedSock {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &movedSock{c: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			if stun.IsMessage(b[:n]) {
				s.answers.Add(1)
			} else {
				s.media.Add(1)
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return s
}

// bind sends verified Binding Requests every 200 ms until one is answered
// or the time is up.
func (s *movedSock) bind(t *testing.T, server net.Addr, user, pwd string, within time.Duration) bool {
	t.Helper()
	for end := time.Now().Add(within); time.Now().Before(end); {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user), ice.UseCandidate(),
			stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.c.WriteTo(m.Raw, server); err != nil {
			t.Fatal(err)
		}
		s.sent.Add(1)
		for wait := time.Now().Add(200 * time.Millisecond); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
			if s.answers.Load() > 0 {
				return true
			}
		}
	}
	return false
}
