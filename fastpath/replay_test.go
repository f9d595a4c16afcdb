package fastpath

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

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
			_ = q.driveGOP(buf)
			readAll(q.pub.fd)
			q.retable(func(route.SessionID) bool { return true })
			q.drive(0)
			pkts, _ := received(t, q.keys, q.players[0].fd)
			_, fb := received(t, q.keys, q.pub.fd)
			s := q.e.Stats()
			// A replay sends its first packet twice (pace.go replayedOne).
			if tc.replayed != (len(pkts) == gopPackets+1) || tc.replayed != (s.GOPReplayed == gopPackets) ||
				tc.replayed != (s.GOPFirstRepeats == 1) {
				t.Errorf("player got %d packets, %d counted replayed, %d first repeats; want replayed=%v", len(pkts), s.GOPReplayed, s.GOPFirstRepeats, tc.replayed)
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
// resend budget; both are counted, without allocating. For a player of
// another core than its publisher's, the same holds, and the NACK is cut
// before it crosses: what comes back through the ring is at most twice
// what the budget pays.
func TestResendGuard(t *testing.T) {
	for _, cores := range []int{1, 2} {
		t.Run(map[int]string{1: "same core", 2: "another core"}[cores], func(t *testing.T) {
			testResendGuard(t, cores)
		})
	}
}

func testResendGuard(t *testing.T, cores int) {
	pc := cores - 1 // the player's core; the publisher's is 0
	q := newQRig(t, cores, 1, func(int) int { return pc })
	buf := make([]byte, 1500)
	payload := append(append([]byte(nil), nalP...), make([]byte, 1100)...)
	for seq := uint16(1); seq <= 200; seq++ {
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, payload...))
		q.drive(pc)
	}
	readAll(q.players[0].fd)
	ssrc := q.base.Session(2).Tracks[route.KindVideo].SSRC
	nack := func(pairs ...rtcp.NackPair) {
		q.deliver(pc, 2, q.rtcpFrom(t, 2, &rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc, Nacks: pairs}))
		q.drive(0)
		q.drive(pc)
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
	ringIn := q.e.CoreStats()[pc].RingIn
	nack(pairs...)
	s := q.e.Stats()
	crossed := q.e.CoreStats()[pc].RingIn - ringIn
	got := len(readAll(q.players[0].fd))
	t.Logf("burst NACK: %d resent, %d paced, %d suppressed; %d ring messages to the player's core", s.NACKServed-1, s.ResendPaced, s.ResendSuppressed, crossed)
	if s.ResendPaced == 0 || s.NACKServed-1 > minResendBurst/1100+1 || got != int(s.NACKServed) {
		t.Fatalf("burst NACK: served %d (sent %d), paced %d; want at most %d served", s.NACKServed-1, got, s.ResendPaced, minResendBurst/1100+1)
	}
	if cores > 1 && crossed > 2*minResendBurst/1100+2 {
		t.Errorf("burst NACK: %d resends crossed the ring, want ≤ %d (twice the budget)", crossed, 2*minResendBurst/1100+2)
	}
	raw, _ := (&rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 100}}}).Marshal()
	ctx, enc := q.rtcpCtx[2], make([]byte, 0, 200)
	var rh rtcp.Header
	zeroAllocs(t, "NACK suppressed or paced", func() {
		out, _ := ctx.EncryptRTCP(enc[:0], raw, &rh)
		q.deliver(pc, 2, out)
		q.drive(0)
		q.drive(pc)
	})
}

// TestGOPReplayPaced: a GOP larger than the replay burst reaches a joining
// player over several ticks, never more than the burst at once; the live
// packets that come meanwhile follow the replay, in order, with no gap.
func TestGOPReplayPaced(t *testing.T) {
	q := newQRig(t, 1, 1, nil)
	q.retable(func(route.SessionID) bool { return false })
	q.drive(0)
	buf := make([]byte, 1500)
	payload := append(append([]byte(nil), nalP...), make([]byte, 1100)...)
	const gopLen = 200
	seq := uint16(1)
	q.drive(0, q.packet(buf, seq, 1000, nalIDR...))
	for seq = 2; seq <= gopLen; seq++ {
		q.drive(0, q.packet(buf, seq, 1000+uint32(seq)*3000, payload...))
	}
	q.retable(func(route.SessionID) bool { return true })
	q.drive(0, q.packet(buf, seq, 1000+uint32(seq)*3000, payload...)) // the join, and a live packet
	seq++
	first, _ := received(t, q.keys, q.players[0].fd)
	if max := replayBurst/len(payload) + 1; len(first) == 0 || len(first) > max {
		t.Fatalf("%d packets at the join, want 1…%d (the burst)", len(first), max)
	}
	got := append([]uint16(nil), seqsOfPkts(first)...)
	for deadline := time.Now().Add(2 * time.Second); len(got) < gopLen+2 && time.Now().Before(deadline); {
		time.Sleep(25 * time.Millisecond)
		q.forceTimers()
		q.drive(0, q.packet(buf, seq, 1000+uint32(seq)*3000, payload...))
		seq++
		pkts, _ := received(t, q.keys, q.players[0].fd)
		got = append(got, seqsOfPkts(pkts)...)
	}
	if len(got) < 2 || got[1] != got[0] {
		t.Fatalf("the replay's first packet once: %v", got)
	}
	got = got[1:] // the first packet twice (pace.go replayedOne)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("packet %d: seq %d after %d (all %v)", i, got[i], got[i-1], got)
		}
	}
	s := q.e.Stats()
	t.Logf("%d packets: %d at the join, the rest paced (%d waits); %d replayed", len(got), len(first), s.GOPPaced, s.GOPReplayed)
	if len(got) < gopLen+2 || s.GOPPaced == 0 || s.GOPReplayed < gopLen {
		t.Fatalf("got %d packets, %d waits, %d replayed; want ≥ %d, > 0, ≥ %d", len(got), s.GOPPaced, s.GOPReplayed, gopLen+2, gopLen)
	}
	// The player's own counters: every packet the cursor sent, and of
	// those the GOP cached at the join (the rest came live meanwhile).
	pq := &q.e.cores[0].sess[2].pq
	if pq.joinGOP != gopLen || pq.replay <= gopLen || pq.joinGOPBytes < gopLen*1100 || pq.joinGOPBytes > gopLen*1500 {
		t.Errorf("player: %d replayed, %d of the GOP at the join (%d bytes); want > %d, %d (%d…%d bytes)",
			pq.replay, pq.joinGOP, pq.joinGOPBytes, gopLen, gopLen, gopLen*1100, gopLen*1500)
	}
	readAll(q.players[0].fd)
	zeroAllocs(t, "paced replay tick", func() {
		q.e.cores[0].sess[2].pq.cur = replayCursor{on: true, pub: 1, epoch: 1, gen: q.e.cores[0].sess[1].pub.gop.Gen()}
		q.forceTimers()
		q.drive(0)
	})
}

func seqsOfPkts(pkts []*rtp.Packet) []uint16 {
	var s []uint16
	for _, p := range pkts {
		s = append(s, p.SequenceNumber)
	}
	return s
}

// TestGOPReplayFallback: a player that joined a GOP too old to replay gets
// no live video until a keyframe comes; when none has come within
// joinKeyframeWait it gets that GOP after all, unless the GOP is over the
// bytes bound (then its video is live at once, as before).
func TestGOPReplayFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		answered bool // a keyframe comes after the join
		atJoin   int  // packets the player gets at the join
		replayed bool
	}{
		{"unanswered", Config{Cores: 1, ReplayMaxAge: 1}, false, 0, true},
		{"answered", Config{Cores: 1, ReplayMaxAge: 1}, true, 2, false}, // the keyframe's first packet twice
		{"larger than ReplayMaxBytes", Config{Cores: 1, ReplayMaxAge: 1, ReplayMaxBytes: 600}, false, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQRigConfig(t, tc.cfg, 1, nil)
			q.retable(func(route.SessionID) bool { return false })
			q.drive(0)
			buf := make([]byte, 1500)
			big := q.driveGOP(buf)
			q.retable(func(route.SessionID) bool { return true })
			q.drive(0) // the join: too old, nothing replayed
			next := big
			if tc.answered {
				next = nalIDR
			}
			q.drive(0, q.packet(buf, uint16(10+gopPackets), 30000, next...))
			if pkts, _ := received(t, q.keys, q.players[0].fd); len(pkts) != tc.atJoin {
				t.Fatalf("the player got %d packets at the join, want %d", len(pkts), tc.atJoin)
			}
			q.e.cores[0].sess[2].pq.kfAt -= int64(2 * joinKeyframeWait)
			q.forceTimers()
			q.drive(0)
			pkts, _ := received(t, q.keys, q.players[0].fd)
			s := q.e.Stats()
			// The GOP and the live packet held after it, the first sent twice.
			if tc.replayed != (len(pkts) == gopPackets+2) || tc.replayed != (s.GOPFallbacks == 1) {
				t.Errorf("after the wait the player got %d packets, %d fallbacks; want replayed=%v", len(pkts), s.GOPFallbacks, tc.replayed)
			}
			for i := 1; tc.replayed && i < len(pkts); i++ {
				if d := pkts[i].SequenceNumber - pkts[i-1].SequenceNumber; d > 1 {
					t.Errorf("packet %d: seq %d after %d", i, pkts[i].SequenceNumber, pkts[i-1].SequenceNumber)
				}
			}
		})
	}
}

// gopPackets is how many packets driveGOP publishes.
const gopPackets = 6

// driveGOP publishes one GOP as seq 10–15: a keyframe (SPS, PPS, IDR at
// RTP time 1000), then three 200-byte P frames 3000 apart; it returns the
// P frame's payload.
func (q *qrig) driveGOP(buf []byte) []byte {
	big := append(append([]byte(nil), nalP...), make([]byte, 200)...)
	frames := [][]byte{nalSPS, nalPPS, nalIDR, big, big, big}
	stamps := []uint32{1000, 1000, 1000, 4000, 7000, 10000}
	for i, f := range frames {
		q.drive(0, q.packet(buf, uint16(10+i), stamps[i], f...))
	}
	return big
}
