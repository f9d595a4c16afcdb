package fastpath

import (
	"testing"

	"github.com/pion/rtcp"

	"github.com/fanout/fanout/fastpath/route"
)

// TestGOPReplayBound: a joining player gets the cached GOP only when it is
// within the age and byte bounds; otherwise nothing is replayed, the refusal
// is counted, and the join's keyframe request (a PLI) goes to the publisher.
func TestGOPReplayBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		replayed bool
	}{
		{"defaults", Config{Cores: 1}, true},
		{"older than ReplayMaxAge", Config{Cores: 1, ReplayMaxAge: 1}, false},
		{"larger than ReplayMaxBytes", Config{Cores: 1, ReplayMaxBytes: 600}, false},
		{"bounds off", Config{Cores: 1, ReplayMaxAge: -1, ReplayMaxBytes: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQRigConfig(t, tc.cfg, 1, nil)
			q.retable(func(route.SessionID) bool { return false })
			q.drive(0)
			buf := make([]byte, 1500)
			big := append(append([]byte(nil), nalP...), make([]byte, 200)...)
			frames := [][]byte{nalSPS, nalPPS, nalIDR, big, big, big}
			stamps := []uint32{1000, 1000, 1000, 4000, 7000, 10000}
			for i, f := range frames {
				q.drive(0, q.packet(buf, uint16(10+i), stamps[i], f...))
			}
			readAll(q.pub.fd)
			q.retable(func(route.SessionID) bool { return true })
			q.drive(0)
			pkts, _ := received(t, q.keys, q.players[0].fd)
			_, fb := received(t, q.keys, q.pub.fd)
			s := q.e.Stats()
			if tc.replayed != (len(pkts) == len(frames)) || tc.replayed != (s.GOPReplayed == uint64(len(frames))) {
				t.Errorf("player got %d packets, %d counted replayed; want replayed=%v", len(pkts), s.GOPReplayed, tc.replayed)
			}
			if tc.replayed == (s.GOPTooOld == 1) {
				t.Errorf("GOPTooOld = %d, want replayed=%v", s.GOPTooOld, tc.replayed)
			}
			pli := 0
			for _, p := range fb {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					pli++
				}
			}
			if pli != 1 {
				t.Errorf("the publisher got %d PLIs on the join, want 1", pli)
			}
		})
	}
}

// TestResendGuard: a packet NACKed again within one RTT is not resent
// again; a NACK for far more than the stream sends is cut to the player's
// resend budget; both are counted, without allocating.
func TestResendGuard(t *testing.T) {
	q := newQRig(t, 1, 1, nil)
	buf := make([]byte, 1500)
	payload := append(append([]byte(nil), nalP...), make([]byte, 1100)...)
	for seq := uint16(1); seq <= 200; seq++ {
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, payload...))
	}
	readAll(q.players[0].fd)
	ssrc := q.base.Session(2).Tracks[route.KindVideo].SSRC
	nack := func(pairs ...rtcp.NackPair) {
		q.deliver(0, 2, q.rtcpFrom(t, 2, &rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc, Nacks: pairs}))
	}
	nack(rtcp.NackPair{PacketID: 100})
	nack(rtcp.NackPair{PacketID: 100})
	if s := q.e.Stats(); s.NACKServed != 1 || s.ResendSuppressed != 1 {
		t.Fatalf("NACKed twice within an RTT: served %d, suppressed %d; want 1, 1", s.NACKServed, s.ResendSuppressed)
	}
	// 150 packets of 1.1 KB at once: more than the 48 KB a budget holds.
	var pairs []rtcp.NackPair
	for seq := uint16(30); seq < 180; seq += 17 {
		pairs = append(pairs, rtcp.NackPair{PacketID: seq, LostPackets: 0xffff})
	}
	nack(pairs...)
	s := q.e.Stats()
	got := len(readAll(q.players[0].fd))
	t.Logf("burst NACK: %d resent, %d paced, %d suppressed", s.NACKServed-1, s.ResendPaced, s.ResendSuppressed)
	if s.ResendPaced == 0 || s.NACKServed-1 > minResendBurst/1100+1 || got != int(s.NACKServed) {
		t.Fatalf("burst NACK: served %d (sent %d), paced %d; want at most %d served", s.NACKServed-1, got, s.ResendPaced, minResendBurst/1100+1)
	}
	raw, _ := (&rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 100}}}).Marshal()
	ctx, enc := q.rtcpCtx[2], make([]byte, 0, 200)
	var rh rtcp.Header
	zeroAllocs(t, "NACK suppressed or paced", func() {
		out, _ := ctx.EncryptRTCP(enc[:0], raw, &rh)
		q.deliver(0, 2, out)
	})
}
