package fastpath

import (
	"encoding/binary"
	"math/bits"

	"github.com/fanout/fanout/fastpath/bwe"
	"github.com/fanout/fanout/fastpath/gop"
	"github.com/fanout/fanout/fastpath/nack"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// Media quality on the player side: NACKs served from the publisher's
// history (the player's sequence number mapped back through its rewrite
// offset; a plain resend on the player's SSRC — Fanout's answers carry no
// RTX, so RFC 4588 is not used), Sender Reports translated from the
// publisher's, RR loss/jitter and RTT read from the player's reports, and
// the GOP replay that gives a joining player a keyframe at once.
//
// A player and its publisher may live on different cores. What crosses
// goes through the rings like fan-out: a NACK's mapped sequence numbers to
// the publisher's core and the history packets back (opNACK/opResend), a
// GOP request and the replayed packets, paced by the publisher's core
// (opGOP/opReplay/opReplayEnd, replayfar.go), and the publisher's SRs to
// every core with players (opSR).

// Ring ops of the quality paths (after queues.go's).
const (
	opNACK      uint8 = iota + 16 // p: publisher seqs a player of core `from` asks for; sid: the player
	opResend                      // p: a history packet for player sid
	opGOP                         // sid: a player of core `from` that joined; replay the GOP to it
	opReplay                      // p: a GOP packet for joining player sid
	opReplayEnd                   // sid: the GOP replay to that player is complete
	opSR                          // p: a publisher's SR (putSR) for the core's players of p.stream
)

// playerQ is a player session's quality state on its owner core.
type playerQ struct {
	rttLog  rtcpx.RTTLog // the SRs sent to it, for the RTT its RRs echo
	rtt     int64
	joining bool // waiting for a GOP replay from the publisher's core (replayfar.go)
	joined  bool
	joinAt  int64 // when it joined, or got the last replayed packet
	nextSR  int64
	nacks   uint64 // sequence numbers it asked for
	served  uint64 // retransmissions sent to it
	missed  uint64 // asked for and not in the history
	plis    uint64
	replay  uint64       // GOP packets replayed to it
	cur     replayCursor // its paced GOP replay (pace.go)
	resent  *resendLog   // what was resent to it lately (resend.go)
	budget  resendBudget // its resend token bucket (resend.go)
	rr      [route.NumKinds]rtcpx.ReportBlock
	bwe     *bwe.Estimator // when it negotiated transport-cc (playerbwe.go)
	// joinGOP and joinGOPBytes: of the replayed packets, those of the GOP
	// cached when it joined (the rest are live packets a paced replay
	// caught up with).
	joinGOP, joinGOPBytes uint64
	// kfWait: it joined a GOP too old to replay, cache generation kfGen,
	// at kfAt; its live video is held until a keyframe comes, or for
	// joinKeyframeWait, after which that GOP is replayed after all
	// (pace.go heldForKeyframe, joinFallback).
	kfWait bool
	kfGen  uint64
	kfAt   int64
}

// streamSR is a core's copy of a publisher's last SR for one kind.
type streamSR struct {
	src   rtcpx.SRSource
	pub   route.SessionID
	epoch uint32
	ok    bool
}

func trailingCore(m uint64) int { return bits.TrailingZeros64(m) }

// putSR and getSR carry an SRSource in a packet buffer.
func putSR(b []byte, s rtcpx.SRSource) int {
	binary.BigEndian.PutUint64(b, s.NTP)
	binary.BigEndian.PutUint32(b[8:], s.RTPTime)
	binary.BigEndian.PutUint64(b[12:], uint64(s.At))
	return 20
}

func getSR(b []byte) rtcpx.SRSource {
	return rtcpx.SRSource{NTP: binary.BigEndian.Uint64(b), RTPTime: binary.BigEndian.Uint32(b[8:]),
		At: int64(binary.BigEndian.Uint64(b[12:]))}
}

// onQualityMsg handles a quality op taken from core from's ring.
func (c *core) onQualityMsg(from int, m msg) {
	switch m.op {
	case opNACK:
		c.onRemoteNACK(from, m)
	case opGOP:
		c.onGOPRequest(from, m.sid)
	case opResend, opReplay, opReplayEnd, opSR:
		c.onPlayerMsg(m)
	}
	if m.p != nil {
		c.release(m.p)
	}
}

// onPlayerMsg handles what the publisher's core sends this core's players.
func (c *core) onPlayerMsg(m msg) {
	if m.op == opSR {
		if v := c.view(m.p.stream); v != nil {
			sr := &v.sr[m.p.kind]
			if m.p.layers != 0 {
				sr = &v.lsr[m.p.layer] // a simulcast layer's (layers.go)
			}
			*sr = streamSR{src: getSR(m.p.buf[:]), pub: m.p.src, epoch: m.p.srcEpoch, ok: true}
		}
		return
	}
	ps := c.tbl.Session(m.sid)
	if ps == nil || int(m.sid) >= len(c.sess) || !c.sess[m.sid].owned || c.sess[m.sid].tx == nil {
		return
	}
	pst := &c.sess[m.sid]
	switch m.op {
	case opResend:
		if m.p.kind == route.KindVideo && pst.lay.src == m.p.src && m.p.layer != pst.lay.cur {
			return // asked for before a layer switch
		}
		c.resend(ps, pst, m.p.kind, m.p.src, m.p.srcEpoch, m.p.data())
	case opReplay, opReplayEnd:
		// Live packets queued before the replay was cut are older than it:
		// send them (skipping this player) first.
		if len(c.pend) > 0 {
			c.scatter()
		}
		if m.op == opReplayEnd {
			pst.pq.joining = false
		} else if pst.pq.joining {
			sent := pst.out[route.KindVideo].packets
			c.forward(ps, pst, m.p)
			c.replayedOne(ps, pst, m.p.data(), sent, m.cached)
			pst.pq.joinAt = c.now // the replay is moving (replayfar.go)
		}
	}
}

// onPlayerNACK serves a player's generic NACK (RFC 4585 §6.2.1): each
// sequence number it names is mapped back to the publisher's through the
// player's rewrite offset, then resent from the publisher's history, here
// or through the publisher's core.
func (c *core) onPlayerNACK(s *route.Session, st *sessState, p []byte) {
	_, _, media, fci, ok := rtcpx.ParseFeedback(p)
	if !s.NACK || !ok {
		return
	}
	kind, ok := trackOf(s, media)
	if !ok {
		return
	}
	ot := &st.out[kind]
	if !ot.started {
		return
	}
	seqs := c.seqs[:0]
	nack.ParseNACK(fci, func(seq uint16) { seqs = c.mapNACK(st, ot, seqs, seq) })
	if len(seqs) == 0 {
		return
	}
	pub := c.tbl.Session(ot.src)
	if pub == nil || pub.Epoch != ot.srcEpoch {
		st.pq.missed += uint64(len(seqs))
		return
	}
	if o := c.e.ownerOf(pub); o != c.id {
		if seqs = c.screenNACK(st, kind, seqs); len(seqs) > 0 { // resend.go
			c.forwardNACK(o, s, kind, st.lay.cur, pub, seqs)
		}
		return
	}
	c.serveNACK(s, st, kind, pub, seqs)
}

// serveNACK resends seqs of publisher pub, which this core owns, to player
// s from the publisher's history.
func (c *core) serveNACK(s *route.Session, st *sessState, kind route.Kind, pub *route.Session, seqs []uint16) {
	var h *nack.History
	if q := c.sess[pub.ID].pub; q != nil {
		h = q.histOf(kind, st.lay.cur)
	}
	for _, seq := range seqs {
		if h == nil {
			st.pq.missed++
			continue
		}
		if data, ok := h.Get(seq); ok {
			c.resend(s, st, kind, pub.ID, pub.Epoch, data)
		} else {
			st.pq.missed++
			c.cnt.nackMissed.Add(1)
		}
	}
}

// mapNACK appends the publisher sequence number behind the player's seq,
// when seq is one Fanout sent it from the current publisher.
func (c *core) mapNACK(st *sessState, ot *outTrack, seqs []uint16, seq uint16) []uint16 {
	st.pq.nacks++
	if len(seqs) == cap(seqs) || int16(seq-ot.firstSeq) < 0 || int16(ot.lastSeq-seq) < 0 {
		st.pq.missed++
		return seqs
	}
	return append(seqs, seq-ot.seqDelta)
}

// forwardNACK hands mapped sequence numbers to the publisher's core.
func (c *core) forwardNACK(owner int, s *route.Session, kind route.Kind, layer uint8, pub *route.Session, seqs []uint16) {
	p := c.getPkt()
	if p == nil {
		return
	}
	for i, seq := range seqs {
		binary.BigEndian.PutUint16(p.buf[2*i:], seq)
	}
	p.n, p.kind, p.src, p.srcEpoch, p.stream = 2*len(seqs), kind, pub.ID, pub.Epoch, s.Stream
	p.layer = layer
	if !c.push(owner, msg{p: p, sid: s.ID, op: opNACK}) {
		c.release(p)
	}
}

// onRemoteNACK answers another core's player from the history of a
// publisher this core owns, one opResend per packet found, keeping half the
// ring free for the live fan-out (the rest counts as paced: the player
// NACKs it again).
func (c *core) onRemoteNACK(from int, m msg) {
	p := m.p
	if int(p.src) >= len(c.sess) || c.sess[p.src].epoch != p.srcEpoch || c.sess[p.src].pub == nil {
		return
	}
	h := c.sess[p.src].pub.histOf(p.kind, p.layer)
	if h == nil {
		return
	}
	rg := c.e.rings[c.id][from]
	for i := 0; i+1 < p.n; i += 2 {
		data, ok := h.Get(binary.BigEndian.Uint16(p.buf[i:]))
		if !ok {
			c.cnt.nackMissed.Add(1)
			continue
		}
		if rg.free() <= len(rg.slots)/2 {
			c.cnt.resendPaced.Add(uint64(p.n-i) / 2)
			return
		}
		r := c.getPkt()
		if r == nil {
			return
		}
		r.n = copy(r.buf[:], data)
		r.stream, r.src, r.srcEpoch, r.kind, r.layer = p.stream, p.src, p.srcEpoch, p.kind, p.layer
		if !c.push(from, msg{p: r, sid: m.sid, op: opResend}) {
			c.release(r)
			return
		}
	}
}

// resend sends a history packet to a player again with its current
// rewrite, without moving the rewrite state. A packet of another
// publisher than the one the player is on is not sent.
func (c *core) resend(ps *route.Session, pst *sessState, kind route.Kind, src route.SessionID, epoch uint32, data []byte) {
	ot := &pst.out[kind]
	tr := &ps.Tracks[kind]
	if tr.SSRC == 0 || !ot.started || ot.src != src || ot.srcEpoch != epoch || len(data) < 12 {
		return
	}
	pubSeq := binary.BigEndian.Uint16(data[2:])
	force := kind == route.KindVideo && c.switchKeyframe(pst, data)
	if !c.allowResend(pst, kind, pubSeq, len(data), force) {
		return
	}
	seq := pubSeq + ot.seqDelta
	ts := binary.BigEndian.Uint32(data[4:]) + ot.tsDelta
	if int16(seq-ot.firstSeq) < 0 {
		return // numbered before a temporal-layer drop moved the rewrite (svc.go)
	}
	if c.emitRTP(ps, pst, kind, data, seq, ts) {
		pst.pq.served++
		c.cnt.nackServed.Add(1)
	}
}

// onPlayerRR reads a player's reception reports about the tracks Fanout
// sends it: loss and jitter for the counters, and the RTT from LSR/DLSR
// echoing our SRs (RFC 3550 §6.4.1).
func (c *core) onPlayerRR(s *route.Session, st *sessState, p []byte) {
	rtcpx.Reports(p, func(rb rtcpx.ReportBlock) {
		kind, ok := trackOf(s, rb.SSRC)
		if !ok {
			return
		}
		st.pq.rr[kind] = rb
		if kind == route.KindVideo && !c.estimateDriven(st) {
			c.adaptLayer(s, st, rb.FractionLost) // no pinned layer, no transport-cc estimate (layerauto.go)
		}
		if rtt, ok := st.pq.rttLog.RTT(rb.LSR, rb.DLSR, c.now); ok {
			st.pq.rtt = rtt
		}
	})
}

// tickPlayer ends a join wait that timed out and sends the player its
// Sender Reports when due.
func (c *core) tickPlayer(pid route.SessionID) {
	st := &c.sess[pid]
	s := c.tbl.Session(pid)
	if s == nil || st.tx == nil {
		return
	}
	if st.pq.joining && c.now-st.pq.joinAt > int64(joinTimeout) {
		st.pq.joining = false
	}
	if st.pq.kfWait && c.now-st.pq.kfAt > int64(joinKeyframeWait) {
		st.pq.kfWait = false
		c.joinFallback(s, st)
	}
	if st.pq.cur.on {
		c.paceReplay(s, st)
	}
	c.measureRate(st)
	if c.now < st.pq.nextSR {
		return
	}
	v := c.view(s.Stream)
	if v == nil {
		return
	}
	for k := range s.Tracks {
		if c.sendSR(s, st, route.Kind(k), v.srOf(st, route.Kind(k))) {
			st.pq.nextSR = c.now + int64(srPeriod)
		}
	}
}

// sendSR sends a player the SR of one track, translated from the
// publisher's last one (rtcpx.TranslateSR): the same NTP clock for audio
// and video, so the browser keeps lip sync.
func (c *core) sendSR(s *route.Session, st *sessState, kind route.Kind, sr *streamSR) bool {
	ot := &st.out[kind]
	tr := &s.Tracks[kind]
	if tr.SSRC == 0 || !ot.started || !sr.ok || sr.pub != ot.src || sr.epoch != ot.srcEpoch {
		return false
	}
	buf := c.outBuf()
	n, ntp, ok := rtcpx.TranslateSR(buf[:maxRTCP], sr.src, tr.ClockRate, c.now, tr.SSRC, ot.tsDelta,
		uint32(ot.packets), uint32(ot.octets))
	if !ok || !c.commitRTCP(st, buf, n) {
		return false
	}
	st.pq.rttLog.Sent(ntp, c.now)
	c.cnt.srOut.Add(1)
	return true
}

// playerJoined starts a newly ready player of this core from the
// publisher's cached GOP: at once when this core owns the publisher,
// otherwise by asking its core, holding the player's live video until the
// replay ends (so it never sees older packets after newer ones).
func (c *core) playerJoined(t *route.Table, s *route.Session, st *sessState) {
	strm := t.Stream(s.Stream)
	pub := c.publisherOf(t, s.Stream)
	if strm == nil || !strm.KeyframeCache || pub == nil || s.Tracks[route.KindVideo].SSRC == 0 {
		return
	}
	if o := c.e.ownerOf(pub); o != c.id {
		if c.push(o, msg{sid: s.ID, op: opGOP}) {
			st.pq.joining, st.pq.joinAt = true, c.now
		}
		return
	}
	q := c.sess[pub.ID].pub
	if q == nil {
		return
	}
	g, layer := q.gopFor(pub, s.Layer) // a simulcast player's layer's (layers.go)
	if c.replayable(g) {
		c.startReplay(s, st, pub, g, layer, false) // paced (pace.go)
	} else if c.fallbackable(g) && pub.Simulcast.N == 0 {
		// Too old: hold its live video until the keyframe its join asked
		// for, or replay this GOP after all (pace.go joinFallback).
		st.pq.kfWait, st.pq.kfGen, st.pq.kfAt = true, g.Gen(), c.now
	}
}

// replayable reports whether GOP cache g holds a GOP to replay within the
// age and byte bounds (Config.ReplayMaxAge, ReplayMaxBytes), counting a GOP
// refused for either; the join's keyframe request then starts the player
// instead.
func (c *core) replayable(g *gop.Cache) bool {
	if g == nil || !g.Ready() {
		return false
	}
	_, bytes := g.Len()
	maxAge, maxBytes := int64(c.e.cfg.ReplayMaxAge), c.e.cfg.ReplayMaxBytes
	if (maxAge > 0 && g.Age(c.now) > maxAge) || (maxBytes > 0 && bytes > maxBytes) {
		c.cnt.gopTooOld.Add(1)
		return false
	}
	return true
}
