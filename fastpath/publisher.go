package fastpath

import (
	"time"

	"github.com/fanout/fanout/fastpath/av1dd"
	"github.com/fanout/fanout/fastpath/gop"
	"github.com/fanout/fanout/fastpath/nack"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
	"github.com/fanout/fanout/fastpath/twcc"
)

// Media quality on the publisher side (DESIGN.md "Media behaviour"): the
// core that owns a publisher session keeps, per published track, a NACK
// receiver (gap detection, RTT-adapted retries, bounded give-up), RFC 3550
// receive statistics for its Receiver Reports, a packet history keyed by
// the publisher's sequence number that serves every player's NACKs, and for
// video a GOP cache that joining players start from; per session a
// transport-wide congestion control recorder. Its timers run once per
// tick (quality timers below), never per packet.

// Timer periods (notes/srs-reference.md §4.1: SRS ticks NACK every 20 ms,
// TWCC every 100 ms, RR + XR every 1 s).
const (
	nackPeriod   = 20 * time.Millisecond
	twccPeriod   = 50 * time.Millisecond // Chrome sends its own every 50–100 ms; GoogCC ramps faster with 50
	reportPeriod = time.Second
	srPeriod     = time.Second
	// slowPeriod is how often players' timers (SR, join timeout) are looked at.
	slowPeriod = 100 * time.Millisecond
	// joinTimeout ends a player's wait for a GOP replay from another core
	// whose answer was lost (a full ring): that long after its join or the
	// last replayed packet. It covers the publisher's core's wait for a
	// keyframe when the GOP was too old (joinKeyframeWait, replayfar.go).
	joinTimeout = joinKeyframeWait + time.Second
)

// fanoutSSRC is the sender SSRC of Fanout's RTCP to publishers (it sends
// them no media); their XR DLRR blocks are addressed to it.
const fanoutSSRC = 1

// maxRTCP is the largest plaintext RTCP packet Fanout builds: room is left
// in a 1280-byte datagram for the SRTCP index and tag.
const maxRTCP = 1200

// maxTWCCPerTick bounds the feedback packets one publisher gets per tick.
const maxTWCCPerTick = 4

// pubState is the quality state of a publisher session, on its owner core.
type pubState struct {
	rx      [route.NumKinds]nack.Receiver
	rs      [route.NumKinds]rtcpx.ReceiveStats
	hist    [route.NumKinds]*nack.History
	gop     *gop.Cache                       // video, when the stream's keyframe_cache is on
	sim     *simPub                          // simulcast video: per-layer state (layers.go)
	tw      *twcc.Recorder                   // when transport-cc was negotiated
	dd      [route.MaxLayers]av1dd.Structure // AV1 template structure per track or simulcast layer (svcav1.go)
	rttLog  rtcpx.RTTLog
	rtt     int64 // ns, EWMA of XR DLRR samples; 0 = unknown
	fbCount uint8
	// timers, ns on the core clock
	nextTWCC, nextRR int64
	// counters
	packets, bytes [route.NumKinds]uint64
	lastFraction   [route.NumKinds]uint8 // in the last RR
	nacks          uint64                // sequence numbers requested
	twccSent       uint64
}

// newPubState allocates the state for publisher s (sync: may allocate).
func newPubState(s *route.Session, keyframeCache bool) *pubState {
	q := &pubState{}
	for k := range s.Tracks {
		tr := &s.Tracks[k]
		if tr.SSRC == 0 {
			continue
		}
		q.rs[k].Init(tr.SSRC, tr.ClockRate)
		size := nack.AudioHistory
		if route.Kind(k) == route.KindVideo {
			size = nack.VideoHistory
		}
		q.hist[k] = nack.NewHistory(size)
	}
	if v := s.Tracks[route.KindVideo]; keyframeCache && v.SSRC != 0 && v.Codec != route.CodecOther {
		q.gop = gop.NewCache(v.Codec, gop.DefaultMaxPackets, gop.DefaultMaxBytes)
	}
	if s.Simulcast.N > 0 {
		q.sim = newSimPub(s, keyframeCache)
	}
	if s.TWCCExt != 0 {
		q.tw = new(twcc.Recorder)
	}
	return q
}

// recordTransport notes a decrypted packet's transport-wide sequence number
// and arrival (every packet counts, whatever its SSRC or payload type, or
// the publisher's estimator would see it as lost).
func (c *core) recordTransport(s *route.Session, q *pubState, plain []byte) {
	if q.tw == nil {
		return
	}
	if seq, ok := twcc.TransportSeq(plain, s.TWCCExt); ok {
		q.tw.Record(seq, c.now)
	}
}

// notePublished runs the per-packet publisher bookkeeping: gap detection,
// receive statistics, and the history and GOP cache, which keep stripped
// (what players get) since every player's copy is made from them.
func (c *core) notePublished(s *route.Session, q *pubState, kind route.Kind, layer uint8, plainLen int, stripped []byte) {
	if kind == route.KindVideo && q.sim != nil {
		q.sim.note(c, s, layer, plainLen, stripped)
		return
	}
	seq, ts := c.hdr.SequenceNumber, c.hdr.Timestamp
	if s.NACK && kind == route.KindVideo { // browsers negotiate no NACK for audio
		q.rx[kind].Push(seq, c.now)
	}
	q.rs[kind].Update(seq, ts, c.now)
	q.packets[kind]++
	q.bytes[kind] += uint64(plainLen)
	if h := q.hist[kind]; h != nil {
		h.Put(seq, stripped)
	}
	if kind == route.KindVideo && q.gop != nil {
		q.gop.Push(stripped, c.now)
	}
}

// runTimers runs the quality timers when a tick is due: NACKs, TWCC
// feedback and reports to the publishers this core owns, sender reports and
// join timeouts of its players, and the per-session counters for control.
func (c *core) runTimers() {
	if c.now < c.nextTick {
		return
	}
	c.nextTick = c.now + int64(nackPeriod)
	for _, pid := range c.pubs {
		c.tickPublisher(pid)
	}
	if len(c.far) > 0 {
		c.tickFar() // GOP replays to other cores' players (replayfar.go)
	}
	if c.now >= c.nextSlow {
		c.nextSlow = c.now + int64(slowPeriod)
		for _, pid := range c.players {
			c.tickPlayer(pid)
		}
	}
	if c.now >= c.nextBoard {
		c.nextBoard = c.now + int64(time.Second)
		c.publishQuality()
	}
}

// tickPublisher sends publisher pid what is due: NACKs for video (browsers
// negotiate none for audio) every tick, TWCC
// feedback every twccPeriod, RR + XR RRTR every reportPeriod.
func (c *core) tickPublisher(pid route.SessionID) {
	st := &c.sess[pid]
	s := c.tbl.Session(pid)
	q := st.pub
	if s == nil || q == nil || st.tx == nil {
		return
	}
	if ssrc := s.Tracks[route.KindVideo].SSRC; s.NACK && ssrc != 0 {
		rx := &q.rx[route.KindVideo]
		seqs := rx.Collect(c.now, q.rtt, c.seqs[:0])
		q.nacks += uint64(len(seqs))
		c.sendNACK(st, ssrc, seqs)
		if rx.TakeKeyframeRequest() {
			c.wantKeyframe(c.tbl, pid) // repair failed: the decoders need a fresh start
		}
	}
	if q.sim != nil {
		c.tickLayers(st, s, q)
	}
	if q.tw != nil && c.now >= q.nextTWCC {
		q.nextTWCC = c.now + int64(twccPeriod)
		c.sendTWCC(st, s, q)
	}
	if c.now >= q.nextRR {
		q.nextRR = c.now + int64(reportPeriod)
		c.sendRR(st, s, q)
	}
}

// sendNACK sends generic NACKs (RFC 4585 §6.2.1) for seqs of mediaSSRC,
// as many packets as they need.
func (c *core) sendNACK(st *sessState, mediaSSRC uint32, seqs []uint16) {
	for len(seqs) > 0 {
		buf := c.outBuf()
		n, used := nack.BuildNACK(buf[:maxRTCP], fanoutSSRC, mediaSSRC, seqs)
		if n == 0 {
			return
		}
		seqs = seqs[used:]
		if c.commitRTCP(st, buf, n) {
			c.cnt.nackOut.Add(1)
		}
	}
}

// sendTWCC sends the transport-wide feedback pending for publisher s
// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
func (c *core) sendTWCC(st *sessState, s *route.Session, q *pubState) {
	media := s.Tracks[route.KindVideo].SSRC
	if media == 0 {
		media = s.Tracks[route.KindAudio].SSRC
	}
	for range maxTWCCPerTick {
		if !q.tw.Pending() {
			return
		}
		buf := c.outBuf()
		n, ok := q.tw.BuildFeedback(buf[:maxRTCP], fanoutSSRC, media, q.fbCount)
		if !ok {
			return
		}
		q.fbCount++
		if c.commitRTCP(st, buf, n) {
			q.twccSent++
			c.cnt.twccOut.Add(1)
		}
	}
}

// sendRR sends a Receiver Report with real loss and jitter for every track
// that has received packets (RFC 3550 §6.4.2) and an XR RRTR (RFC 3611
// §4.4) in one compound packet; the publisher's DLRR answer gives the RTT.
func (c *core) sendRR(st *sessState, s *route.Session, q *pubState) {
	var blocks [route.NumKinds + route.MaxLayers]rtcpx.ReportBlock
	nb := 0
	for k := range s.Tracks {
		if s.Tracks[k].SSRC != 0 && q.packets[k] != 0 {
			blocks[nb] = q.rs[k].Report(c.now)
			q.lastFraction[k] = blocks[nb].FractionLost
			nb++
		}
	}
	rbs := blocks[:nb]
	if q.sim != nil {
		rbs = q.sim.layerReports(rbs, c.now)
	}
	buf := c.outBuf()
	n, ok := rtcpx.BuildRR(buf[:maxRTCP], fanoutSSRC, rbs...)
	if !ok {
		return
	}
	ntp := rtcpx.NTPFromUnixNano(c.wallBase + c.now)
	m, ok := rtcpx.BuildRRTR(buf[n:maxRTCP], fanoutSSRC, ntp)
	if !ok {
		return
	}
	if c.commitRTCP(st, buf, n+m) {
		q.rttLog.Sent(ntp, c.now)
		c.cnt.rrOut.Add(1)
	}
}

// onPublisherSR records a publisher's Sender Report (RFC 3550 §6.4.1) for
// its RR's LSR/DLSR and hands it to every core with players of the stream,
// which translate it into their players' SRs.
func (c *core) onPublisherSR(s *route.Session, q *pubState, p []byte) {
	si, ok := rtcpx.ParseSR(p)
	if !ok {
		c.cnt.drops[DropRTCPMalformed].Add(1)
		return
	}
	kind, ok := trackOf(s, si.SSRC)
	if !ok {
		if q.sim != nil {
			c.onLayerSR(s, q.sim, si)
		}
		return
	}
	q.rs[kind].OnSR(si.NTP, si.RTPTime, c.now)
	src := rtcpx.SRSource{NTP: si.NTP, RTPTime: si.RTPTime, At: c.now}
	v := c.view(s.Stream)
	if v == nil {
		return
	}
	v.sr[kind] = streamSR{src: src, pub: s.ID, epoch: s.Epoch, ok: true}
	c.shareSR(s, v, kind, 0, 0, src)
}

// shareSR hands publisher s's SR of a track (or of simulcast layer layer
// of layers, layers.go) to the other cores with players of its stream.
func (c *core) shareSR(s *route.Session, v *streamView, kind route.Kind, layer, layers uint8, src rtcpx.SRSource) {
	for m := v.remote; m != 0; m &= m - 1 {
		pk := c.getPkt()
		if pk == nil {
			return
		}
		pk.stream, pk.src, pk.srcEpoch, pk.kind = s.Stream, s.ID, s.Epoch, kind
		pk.layer, pk.layers = layer, layers
		pk.n = putSR(pk.buf[:], src)
		if !c.push(trailingCore(m), msg{p: pk, op: opSR}) {
			c.release(pk)
		}
	}
}

// onPublisherXR takes the RTT from a DLRR block answering our RRTR
// (RFC 3611 §4.5), smoothed like SRS (EWMA 0.8/0.2).
func (c *core) onPublisherXR(q *pubState, p []byte) {
	lrr, dlrr, ok := rtcpx.FindDLRR(p, fanoutSSRC)
	if !ok {
		return
	}
	rtt, ok := q.rttLog.RTT(lrr, dlrr, c.now)
	if !ok {
		return
	}
	if q.rtt == 0 {
		q.rtt = rtt
	} else {
		q.rtt = (4*q.rtt + rtt) / 5
	}
}
