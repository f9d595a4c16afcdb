package fastpath

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/fastpath/route"
)

const twccID = 3

// qrig is a rig whose sessions negotiated NACK, whose publisher sends
// H.264 with transport-cc (extension twccID) and whose stream has the
// keyframe cache on. present chooses which players are in the table.
type qrig struct {
	*rig
	base    *route.Table
	version uint64
	tw      uint16
	hdr     rtp.Header
	plain   [1500]byte
	rtcpCtx map[route.SessionID]*srtp.Context // per sender: SRTCP indexes must grow
}

func newQRig(t testing.TB, cores, subs int, playerCore func(int) int) *qrig {
	t.Helper()
	return newQRigConfig(t, Config{Cores: cores}, subs, playerCore)
}

func newQRigConfig(t testing.TB, cfg Config, subs int, playerCore func(int) int) *qrig {
	t.Helper()
	r := newRig(t, rigOptions{cfg: cfg, subs: subs, rcvbuf: 1 << 20, playerCore: playerCore})
	q := &qrig{rig: r, base: r.e.Table(), version: 10, rtcpCtx: map[route.SessionID]*srtp.Context{}}
	q.retable(func(route.SessionID) bool { return true })
	return q
}

// retable publishes the rig's table with the quality options, keeping the
// players for which present is true.
func (q *qrig) retable(present func(route.SessionID) bool) {
	q.version++
	b := route.NewBuilder(q.version, route.SessionID(len(q.base.Sessions)-1), 1)
	st := route.Stream{ID: 1, Publisher: 1, KeyframeCache: true}
	for i := 1; i < len(q.base.Sessions); i++ {
		s := q.base.Sessions[i]
		s.NACK = true
		switch {
		case s.Role == route.RolePublisher:
			s.TWCCExt = twccID
			s.Tracks[route.KindVideo].Codec = route.CodecH264
		case !present(s.ID):
			continue
		default:
			st.Players = append(st.Players, s.ID)
		}
		b.AddSession(s, s.Peer)
	}
	b.AddStream(st)
	q.e.Publish(b.Table())
}

// packet encrypts a publisher packet with the transport-cc extension.
func (q *qrig) packet(dst []byte, seq uint16, ts uint32, payload ...byte) []byte {
	p := q.plain[:0]
	p = append(p, 0x90, pubPT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], pubSSRC)
	q.tw++
	p = append(p, 0xbe, 0xde, 0, 1, twccID<<4|1, byte(q.tw>>8), byte(q.tw), 0)
	p = append(p, payload...)
	enc, err := q.pubCtx.EncryptRTP(dst[:0], p, &q.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// rtcpFrom encrypts a compound RTCP packet as session id sends it.
func (q *qrig) rtcpFrom(t testing.TB, id route.SessionID, pkts ...rtcp.Packet) []byte {
	t.Helper()
	ctx := q.rtcpCtx[id]
	if ctx == nil {
		ctx = q.playerRTCPContext(t)
		q.rtcpCtx[id] = ctx
	}
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ctx.EncryptRTCP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// deliver runs one round of core i with datagrams from addr of session id.
func (q *qrig) deliver(i int, id route.SessionID, dgrams ...[]byte) {
	c := q.e.cores[i]
	from := q.e.Table().Session(id).Peer
	c.begin()
	for _, d := range dgrams {
		c.handle(d, from)
	}
	c.finish()
}

// forceTimers makes the next round run every quality timer.
func (q *qrig) forceTimers() {
	for _, c := range q.e.cores {
		c.nextTick, c.nextSlow, c.nextBoard = 0, 0, 0
		for i := range c.sess {
			if p := c.sess[i].pub; p != nil {
				p.nextTWCC, p.nextRR = 0, 0
			}
			c.sess[i].pq.nextSR = 0
		}
	}
}

// received decrypts what a sink got from Fanout: RTP packets and RTCP packets.
func received(t testing.TB, keys *route.Keys, fd int) (pkts []*rtp.Packet, fb []rtcp.Packet) {
	t.Helper()
	ctx, err := srtp.CreateContext(keys.LocalKey, keys.LocalSalt, keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range readAll(fd) {
		if Classify(d) == ClassRTCP {
			plain, err := ctx.DecryptRTCP(nil, d, nil)
			if err != nil {
				t.Fatalf("SRTCP from Fanout: %v", err)
			}
			ps, err := rtcp.Unmarshal(plain)
			if err != nil {
				t.Fatalf("RTCP from Fanout: %v", err)
			}
			fb = append(fb, ps...)
			continue
		}
		plain, err := ctx.DecryptRTP(nil, d, nil)
		if err != nil {
			t.Fatalf("SRTP from Fanout: %v", err)
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	return pkts, fb
}

// h264 payloads: SPS, PPS, IDR slice, non-IDR slice (single NAL units).
var (
	nalSPS = []byte{0x67, 0x42, 0xe0, 0x1f, 0xaa}
	nalPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	nalIDR = []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	nalP   = []byte{0x41, 0x9a, 0x02, 0x03}
)

// TestPublisherFeedback: a gap in a publisher's stream is NACKed, its
// transport-wide sequence numbers come back as TWCC feedback, and its RR
// reports the loss; the retransmission counts as recovered.
func TestPublisherFeedback(t *testing.T) {
	q := newQRig(t, 1, 1, nil)
	buf := make([]byte, 1500)
	for seq := uint16(100); seq < 110; seq++ {
		if seq == 104 || seq == 105 {
			continue
		}
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nalP...))
	}
	q.forceTimers()
	q.e.cores[0].now += int64(nackPeriod) // past FirstDelay: the holes are due
	c := q.e.cores[0]
	c.runTimers()
	c.flush()
	_, fb := received(t, q.keys, q.pub.fd)
	var nacked []uint16
	var twcc, rr, xr int
	var lastRR *rtcp.ReceiverReport
	for _, p := range fb {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			for _, n := range p.Nacks {
				nacked = append(nacked, n.PacketList()...)
			}
		case *rtcp.TransportLayerCC:
			twcc += int(p.PacketStatusCount)
		case *rtcp.ReceiverReport:
			rr++
			lastRR = p
		case *rtcp.ExtendedReport:
			xr++
		}
	}
	// The first round's timers already sent an RR and feedback for packet 1.
	if len(nacked) != 2 || nacked[0] != 104 || nacked[1] != 105 || twcc != 8 || rr != 2 || xr != 2 {
		t.Fatalf("NACKed %v, TWCC for %d packets, %d RR, %d XR; feedback %v", nacked, twcc, rr, xr, fb)
	}
	if r := lastRR.Reports; len(r) != 1 || r[0].TotalLost != 2 || r[0].FractionLost == 0 || r[0].LastSequenceNumber != 109 {
		t.Errorf("RR %+v, want 2 lost up to 109", r)
	}
	q.drive(0, q.packet(buf, 104, 104*3000, nalP...))
	q.forceTimers()
	q.drive(0)
	sq, ok := q.e.SessionQuality(1)
	if !ok || sq.Tracks[route.KindVideo].Recovered != 1 || sq.NACKs != 2 || sq.TWCCFeedbacks == 0 ||
		sq.Tracks[route.KindVideo].Packets != 9 {
		t.Fatalf("publisher quality %+v (%v)", sq, ok)
	}
}

// TestNACKServe: a player's NACK is answered from the publisher's history
// with its own rewrite, when the player is on the publisher's core and
// when it is on another.
func TestNACKServe(t *testing.T) {
	q := newQRig(t, 2, 2, func(i int) int { return i })
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 20; seq++ {
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nalP...))
		q.drive(1)
	}
	for i, sk := range q.players {
		id := route.SessionID(i + 2)
		readAll(sk.fd)
		ssrc := q.base.Session(id).Tracks[route.KindVideo].SSRC
		nackPkt := &rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc,
			Nacks: []rtcp.NackPair{{PacketID: 5, LostPackets: 0b101}}} // 5, 6, 8
		q.deliver(i, id, q.rtcpFrom(t, id, nackPkt))
		q.drive(0)
		q.drive(1)
		pkts, _ := received(t, q.keys, sk.fd)
		var seqs []uint16
		for _, p := range pkts {
			if p.SSRC != ssrc || p.PayloadType != playerPT {
				t.Errorf("player %d: resend with SSRC %x PT %d", i, p.SSRC, p.PayloadType)
			}
			seqs = append(seqs, p.SequenceNumber)
		}
		if len(seqs) != 3 || seqs[0] != 5 || seqs[1] != 6 || seqs[2] != 8 {
			t.Errorf("player %d (core %d): resent %v, want [5 6 8]", i, i, seqs)
		}
	}
	if s := q.e.Stats(); s.NACKServed != 6 {
		t.Errorf("served %d, want 6", s.NACKServed)
	}
}

// TestGOPReplay: players that join after a keyframe get the cached GOP at
// once, on the publisher's core and on another, then the live packets with
// continuous sequence numbers.
func TestGOPReplay(t *testing.T) {
	q := newQRig(t, 2, 2, func(i int) int { return i })
	q.retable(func(route.SessionID) bool { return false })
	q.drive(0)
	q.drive(1)
	buf := make([]byte, 1500)
	frames := [][]byte{nalP, nalSPS, nalPPS, nalIDR, nalP, nalP}
	stamps := []uint32{0, 1000, 1000, 1000, 4000, 7000}
	for i, f := range frames {
		q.drive(0, q.packet(buf, uint16(50+i), stamps[i], f...))
	}
	q.retable(func(route.SessionID) bool { return true })
	for range 3 {
		q.drive(0)
		q.drive(1)
	}
	q.drive(0, q.packet(buf, 56, 20000, nalP...))
	q.drive(1)
	for i, sk := range q.players {
		pkts, _ := received(t, q.keys, sk.fd)
		var seqs []uint16
		for _, p := range pkts {
			seqs = append(seqs, p.SequenceNumber)
		}
		// The replay's first packet twice (pace.go replayedOne): the
		// same SRTP packet, which a real receiver's replay list drops.
		if len(pkts) != 7 || pkts[0].Payload[0] != nalSPS[0] || seqs[0] != 51 || seqs[1] != 51 || seqs[6] != 56 {
			t.Errorf("player %d (core %d): got seqs %v, want 51, 51…56 starting with the SPS", i, i, seqs)
		}
	}
	if s := q.e.Stats(); s.GOPReplays != 2 || s.GOPFirstRepeats != 2 {
		t.Errorf("%d GOP replays, %d first packets repeated, want 2, 2", s.GOPReplays, s.GOPFirstRepeats)
	}
}

// TestGOPReplayHeadroom: a cross-core replay larger than half the ring
// goes over in chunks that leave half of it free, so the live fan-out to
// the other core's players never overflows it; the joining player gets the
// whole GOP, then the live packets, in order.
func TestGOPReplayHeadroom(t *testing.T) {
	for _, gopLen := range []int{2, 12} { // P frames after the IDR; the ring holds 16
		q := newQRigConfig(t, Config{Cores: 2, RingDepth: 16}, 2, func(i int) int { return i })
		q.retable(func(id route.SessionID) bool { return id == 2 }) // player 3 (core 1) joins later
		q.drive(0)
		q.drive(1)
		buf := make([]byte, 1500)
		seq := uint16(1)
		send := func(nal []byte) {
			q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nal...))
			seq++
		}
		send(nalIDR)
		for range gopLen {
			send(nalP)
		}
		q.retable(func(route.SessionID) bool { return true })
		q.drive(1) // player 3 joins on core 1 and asks core 0 for the GOP
		q.drive(0)
		var got []uint16
		for range 12 { // live packets while core 1 takes the replay, chunk by chunk
			send(nalP)
			q.drive(1)
			q.forceTimers()
			q.drive(0)
			q.drive(1)
			pkts, _ := received(t, q.keys, q.players[1].fd)
			got = append(got, seqsOfPkts(pkts)...)
		}
		s := q.e.Stats()
		if s.Drops[DropRingFull] != 0 {
			t.Errorf("gop %d: %d ring-full drops", gopLen, s.Drops[DropRingFull])
		}
		if s.GOPReplays != 1 || s.GOPSkipped != 0 || (gopLen > 8) != (s.GOPPaced > 0) {
			t.Errorf("gop %d: %d replays, %d skipped, %d paced waits; want 1, 0, waits=%v", gopLen, s.GOPReplays, s.GOPSkipped, s.GOPPaced, gopLen > 8)
		}
		// The first packet twice (pace.go replayedOne), then every one of
		// the publisher's packets once.
		if len(got) != int(seq) || got[0] != got[1] {
			t.Fatalf("gop %d: player 3 got %v, want %d packets, the first twice", gopLen, got, seq)
		}
		for i := 2; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Fatalf("gop %d: seq %d after %d (all %v)", gopLen, got[i], got[i-1], got)
			}
		}
	}
}

// TestSenderReports: the publisher's SR reaches players on both cores as
// their own SR: their SSRC, the same NTP clock, the RTP time moved along.
func TestSenderReports(t *testing.T) {
	q := newQRig(t, 2, 2, func(i int) int { return i })
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 5; seq++ {
		q.drive(0, q.packet(buf, seq, 90000+uint32(seq)*3000, nalP...))
		q.drive(1)
	}
	sr := &rtcp.SenderReport{SSRC: pubSSRC, NTPTime: 0xe0000000_00000000, RTPTime: 90000}
	q.deliver(0, 1, q.rtcpFrom(t, 1, sr))
	q.drive(1)
	q.forceTimers()
	q.drive(0)
	q.drive(1)
	for i, sk := range q.players {
		ssrc := q.base.Session(route.SessionID(i + 2)).Tracks[route.KindVideo].SSRC
		_, fb := received(t, q.keys, sk.fd)
		var got *rtcp.SenderReport
		for _, p := range fb {
			if s, ok := p.(*rtcp.SenderReport); ok {
				got = s
			}
		}
		// (Player 1 may miss the first packets: it waited for a GOP replay
		// from core 0, and nothing was cached yet.)
		if got == nil || got.SSRC != ssrc || got.NTPTime>>32 != 0xe0000000 || got.PacketCount < 3 ||
			got.RTPTime-90000 > 90000/10 {
			t.Errorf("player %d: SR %+v", i, got)
		}
	}
}

// TestQualityAllocs pins zero allocations on the per-packet quality paths.
func TestQualityAllocs(t *testing.T) {
	buf := make([]byte, 1500)
	for _, cores := range []int{1, 2} {
		q := newQRig(t, cores, 2, func(i int) int { return i % cores })
		seq := uint16(0)
		zeroAllocs(t, "publisher packet: TWCC, NACK receiver, stats, history, GOP", func() {
			seq++
			q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nalP...))
			q.drive(cores - 1)
		})
		for i := range q.players {
			id := route.SessionID(i + 2)
			ssrc := q.base.Session(id).Tracks[route.KindVideo].SSRC
			ctx := q.playerRTCPContext(t)
			raw, _ := (&rtcp.TransportLayerNack{SenderSSRC: ssrc, MediaSSRC: ssrc,
				Nacks: []rtcp.NackPair{{PacketID: seq - 10, LostPackets: 0xff}}}).Marshal()
			enc := make([]byte, 0, 200)
			var rh rtcp.Header
			zeroAllocs(t, "player NACK served", func() {
				out, _ := ctx.EncryptRTCP(enc[:0], raw, &rh)
				q.deliver(i%cores, id, out)
				q.drive(0)
				q.drive(cores - 1)
			})
		}
		zeroAllocs(t, "timers: NACK, TWCC, RR+RRTR, SR translation", func() {
			seq += 2 // a hole every time
			q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nalP...))
			q.forceTimers()
			q.drive(0)
			q.drive(cores - 1)
		})
		for _, sk := range append(q.players, q.pub) {
			readAll(sk.fd)
		}
	}
}

// FuzzRTCP feeds arbitrary decrypted RTCP as if from a player and from the
// publisher: nothing panics, and no other session's state changes.
func FuzzRTCP(f *testing.F) {
	for _, p := range []rtcp.Packet{
		&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 0xa0000000, Nacks: []rtcp.NackPair{{PacketID: 3, LostPackets: 0xffff}}},
		&rtcp.PictureLossIndication{MediaSSRC: pubSSRC},
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 0xa0000000, LastSenderReport: 7}}},
		&rtcp.SenderReport{SSRC: pubSSRC, NTPTime: 1 << 40, RTPTime: 5},
		&rtcp.ExtendedReport{SenderSSRC: pubSSRC, Reports: []rtcp.ReportBlock{&rtcp.DLRRReportBlock{
			Reports: []rtcp.DLRRReport{{SSRC: fanoutSSRC, LastRR: 1, DLRR: 2}}}}},
	} {
		raw, _ := p.Marshal()
		f.Add(raw)
	}
	f.Add([]byte{0x80, 0xc8, 0xff, 0xff})
	f.Add([]byte{0xa1, 0xcd, 0x00, 0x01, 0, 0, 0, 0})
	q := newQRig(f, 1, 2, nil)
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 30; seq++ {
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, nalP...))
	}
	c := q.e.cores[0]
	f.Fuzz(func(t *testing.T, data []byte) {
		c.begin()
		pub, p2, p3 := c.tbl.Session(1), c.tbl.Session(2), c.tbl.Session(3)
		pubQ, other := c.sess[1].pub, c.sess[3]
		rx, rs, rtt := pubQ.rx, pubQ.rs, pubQ.rtt
		c.handleRTCP(p2, &c.sess[2], append([]byte(nil), data...))
		if c.sess[3] != other || pubQ.rx != rx || pubQ.rs != rs || pubQ.rtt != rtt {
			t.Fatal("a player's RTCP changed another session's state")
		}
		p2st, p3st := c.sess[2], c.sess[3]
		c.handleRTCP(pub, &c.sess[1], append([]byte(nil), data...))
		if c.sess[2] != p2st || c.sess[3] != p3st {
			t.Fatal("the publisher's RTCP changed a player's state")
		}
		_ = p3
		c.finish()
		readAll(q.pub.fd)
		for _, sk := range q.players {
			readAll(sk.fd)
		}
	})
}
