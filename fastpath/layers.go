package fastpath

import (
	"encoding/binary"
	"time"

	"github.com/fanout/fanout/fastpath/gop"
	"github.com/fanout/fanout/fastpath/nack"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// Simulcast (RFC 8853) in the fastpath. A simulcast publisher's video
// arrives as up to route.MaxLayers RTP streams; its owner core learns each
// layer's SSRC from the first packet whose rtp-stream-id header extension
// (RFC 8852) names one of the negotiated RIDs, and keeps per layer what a
// single video track has: NACK receiver, RR statistics, history, GOP cache,
// the last SR. Each fanned-out packet carries its layer (pkt.layer).
//
// A player follows one layer (layerSel): packets of the others are not
// sent. A switch, to the layer route.Session.Layer names, waits for a
// keyframe start on the target layer (asked for with a PLI on that
// layer's SSRC), and there re-bases the player's seq/ts rewrite the way a
// republish does (outTrack.rebase), so the player sees one continuous
// stream on its own SSRC. All of it is allocation-free per packet.

// noLayer is a player's layer before its first keyframe of a simulcast source.
const noLayer = 0xff

// layerAskInterval is how often a player waiting for a switch asks the
// target layer for a keyframe again: just over the publisher's own
// request gap (keyframeInterval), so a lost request or keyframe costs the
// player one more keyframe interval, not several.
const layerAskInterval = keyframeInterval + 100*time.Millisecond

// switchKeyWindow is how long the resends of a switch keyframe's packets
// bypass the player's resend budget (resend.go): the player decodes
// nothing of the new layer until that keyframe is whole.
const switchKeyWindow = 2 * time.Second

// simPub is a simulcast publisher's per-layer state on its owner core.
type simPub struct {
	ssrc         [route.MaxLayers]uint32 // learnt from the RID; 0 = not yet
	rx           [route.MaxLayers]nack.Receiver
	rs           [route.MaxLayers]rtcpx.ReceiveStats
	hist         [route.MaxLayers]*nack.History
	gop          [route.MaxLayers]*gop.Cache // when the stream's keyframe_cache is on
	packets      [route.MaxLayers]uint64
	bytes        [route.MaxLayers]uint64
	lastFraction [route.MaxLayers]uint8
	kfMask       uint8 // layers with a pending keyframe request; 0 = every layer
}

// layerSel is a player's simulcast state on its owner core.
type layerSel struct {
	src      route.SessionID // the simulcast publisher it applies to
	epoch    uint32
	cur      uint8 // layer forwarded now, noLayer before the first keyframe
	askedAt  int64 // last keyframe request for the target layer
	switches uint64
	auto     layerAuto // the RR-loss cap of a player without a pinned layer (layerauto.go)
	keyTS    uint32    // publisher timestamp of the keyframe the last switch started at
	keyAt    int64     // when that switch happened; 0 = none
	pic      vp8Pic    // picture ID continuity across switches (vp8pic.go)
	tdrops   uint64    // packets of temporal layers above its cap (svc.go)
	tcap     uint8     // the temporal cap in force, 0 = none (svc.go)
}

func newSimPub(s *route.Session, keyframeCache bool) *simPub {
	q := &simPub{}
	codec := s.Tracks[route.KindVideo].Codec
	for i := range s.Simulcast.N {
		q.hist[i] = nack.NewHistory(nack.VideoHistory)
		if keyframeCache && codec != route.CodecOther {
			q.gop[i] = gop.NewCache(codec, gop.DefaultMaxPackets, gop.DefaultMaxBytes)
		}
	}
	return q
}

// layerOf returns the layer of the packet whose header is in c.hdr: by its
// SSRC once learnt, else by its RID, learning the SSRC. A packet naming no
// negotiated RID (an RTX stream's repaired-rtp-stream-id) has none.
func (c *core) layerOf(s *route.Session, q *simPub) (uint8, bool) {
	ssrc := c.hdr.SSRC
	for i := range s.Simulcast.N {
		if q.ssrc[i] == ssrc && ssrc != 0 {
			return i, true
		}
	}
	if s.Simulcast.RIDExt == 0 {
		return 0, false
	}
	l, ok := s.Simulcast.LayerOf(c.hdr.GetExtension(s.Simulcast.RIDExt))
	if !ok {
		return 0, false
	}
	q.ssrc[l] = ssrc // a new SSRC for a known RID: the encoder restarted
	q.rs[l].Init(ssrc, s.Tracks[route.KindVideo].ClockRate)
	q.rx[l] = nack.Receiver{}
	if q.gop[l] != nil {
		q.gop[l].Reset()
	}
	c.cnt.layersLearnt.Add(1)
	return l, true
}

// note is notePublished for a simulcast video packet.
func (q *simPub) note(c *core, s *route.Session, layer uint8, plainLen int, stripped []byte) {
	seq := c.hdr.SequenceNumber
	if s.NACK {
		q.rx[layer].Push(seq, c.now)
	}
	q.rs[layer].Update(seq, c.hdr.Timestamp, c.now)
	q.packets[layer]++
	q.bytes[layer] += uint64(plainLen)
	q.hist[layer].Put(seq, stripped)
	if g := q.gop[layer]; g != nil {
		g.Push(stripped, c.now)
	}
}

// histOf is the history a player's NACK of kind is served from.
func (q *pubState) histOf(kind route.Kind, layer uint8) *nack.History {
	if kind == route.KindVideo && q.sim != nil {
		if layer >= route.MaxLayers {
			return nil
		}
		return q.sim.hist[layer]
	}
	return q.hist[kind]
}

// gopFor is the GOP cache a joining player of layer want starts from, and
// that layer (clamped to the publisher's lowest).
func (q *pubState) gopFor(s *route.Session, want uint8) (*gop.Cache, uint8) {
	if q.sim == nil {
		return q.gop, 0
	}
	l := min(want, s.Simulcast.N-1)
	return q.sim.gop[l], l
}

// tickLayers sends a simulcast publisher the NACKs of each layer.
func (c *core) tickLayers(st *sessState, s *route.Session, q *pubState) {
	if !s.NACK {
		return
	}
	for l := range s.Simulcast.N {
		if q.sim.ssrc[l] == 0 {
			continue
		}
		rx := &q.sim.rx[l]
		seqs := rx.Collect(c.now, q.rtt, c.seqs[:0])
		q.nacks += uint64(len(seqs))
		c.sendNACK(st, q.sim.ssrc[l], seqs)
		if rx.TakeKeyframeRequest() {
			c.wantLayerKeyframe(s.ID, l+1)
		}
	}
}

// layerReports appends the RR blocks of the layers that sent packets.
func (q *simPub) layerReports(blocks []rtcpx.ReportBlock, now int64) []rtcpx.ReportBlock {
	for l := range q.ssrc {
		if q.ssrc[l] != 0 && q.packets[l] != 0 {
			b := q.rs[l].Report(now)
			q.lastFraction[l] = b.FractionLost
			blocks = append(blocks, b)
		}
	}
	return blocks
}

// wantLayerKeyframe queues a keyframe request to publisher pid: layer1 is
// the layer plus one, 0 for every layer (a plain request).
func (c *core) wantLayerKeyframe(pid route.SessionID, layer1 uint8) {
	if pid == 0 || int(pid) >= len(c.sess) {
		return
	}
	if q := c.sess[pid].pub; q != nil && q.sim != nil {
		switch {
		case layer1 == 0:
			q.sim.kfMask = 0xff
		case q.sim.kfMask != 0xff:
			q.sim.kfMask |= 1 << (layer1 - 1)
		}
	}
	c.wantKeyframe(c.tbl, pid)
}

// sendKeyframeRequest sends publisher s a PLI: on its video SSRC, or on
// each simulcast layer asked for (every learnt one for a plain request).
func (c *core) sendKeyframeRequest(st *sessState, s *route.Session) {
	q := st.pub
	if q == nil || q.sim == nil {
		c.sendPLI(st, s.Tracks[route.KindVideo].SSRC)
		return
	}
	mask := q.sim.kfMask
	q.sim.kfMask = 0
	if mask == 0 {
		mask = 0xff
	}
	for l := range s.Simulcast.N {
		if mask&(1<<l) != 0 && q.sim.ssrc[l] != 0 {
			c.sendPLI(st, q.sim.ssrc[l])
		}
	}
}

// askLayerKeyframe asks publisher pub for a keyframe on layer, on its core.
func (c *core) askLayerKeyframe(pub route.SessionID, layer uint8) {
	s := c.tbl.Session(pub)
	if s == nil {
		return
	}
	if o := c.e.ownerOf(s); o != c.id {
		c.push(o, msg{sid: pub, op: opKeyframe, layer: layer + 1})
		return
	}
	c.wantLayerKeyframe(pub, layer+1)
}

// passLayer decides whether player ps gets a video packet of layer (of
// layers) from publisher src, switching layers at a keyframe start of the
// wanted one: there its rewrite is re-based so seq and ts run on.
func (c *core) passLayer(ps *route.Session, pst *sessState, src route.SessionID, epoch uint32, layer, layers uint8, data []byte) bool {
	ls := &pst.lay
	if ls.src != src || ls.epoch != epoch {
		ls.src, ls.epoch, ls.cur, ls.askedAt = src, epoch, noLayer, 0
		ls.auto, ls.pic = layerAuto{}, vp8Pic{}
		if pub := c.tbl.Session(src); pub != nil {
			ls.pic.on = pub.Tracks[route.KindVideo].Codec == route.CodecVP8
		}
	}
	want := wantLayer(ps, ls, layers)
	if layer == ls.cur && want == ls.cur {
		ls.pic.note(data)
		return true
	}
	if layer != want {
		// Keep the old layer until the new one has a keyframe, unless the
		// estimator moved the player down: then the old layer is what
		// congests it, and its backlog would delay or drop the keyframe.
		if layer != ls.cur || congestedDown(ps, ls, want) {
			if layer == ls.cur {
				c.askSwitchKeyframe(ls, src, want)
			}
			return false
		}
		ls.pic.note(data)
		return true
	}
	if !c.keyframeStart(src, data) {
		c.askSwitchKeyframe(ls, src, want)
		return false
	}
	if ot := &pst.out[route.KindVideo]; ot.started && ls.cur != noLayer {
		ot.rebase(binary.BigEndian.Uint16(data[2:]), binary.BigEndian.Uint32(data[4:]), c.now, src, epoch,
			ps.Tracks[route.KindVideo].ClockRate)
		ls.pic.rebase(data)
		ls.switches++
		c.cnt.layerSwitches.Add(1)
	}
	ls.cur, ls.askedAt = want, 0
	ls.keyTS, ls.keyAt = binary.BigEndian.Uint32(data[4:]), c.now
	ls.pic.note(data)
	return true
}

// askSwitchKeyframe asks layer want of publisher src for the keyframe a
// pending switch waits for, at most once per layerAskInterval.
func (c *core) askSwitchKeyframe(ls *layerSel, src route.SessionID, want uint8) {
	if ls.askedAt == 0 || c.now-ls.askedAt > int64(layerAskInterval) {
		ls.askedAt = c.now
		c.askLayerKeyframe(src, want)
	}
}

// congestedDown reports whether a pending switch to layer want is a move
// down that the player's automatic cap (its estimator) forces.
func congestedDown(ps *route.Session, ls *layerSel, want uint8) bool {
	return ps.LayerAuto && ls.cur != noLayer && want > ls.cur && ls.auto.floor > ps.Layer
}

// switchKeyframe reports whether data, a video history packet of the
// player's current publisher, belongs to the keyframe its last layer
// switch started at, within switchKeyWindow of the switch.
func (c *core) switchKeyframe(pst *sessState, data []byte) bool {
	ls := &pst.lay
	return ls.keyAt != 0 && c.now-ls.keyAt < int64(switchKeyWindow) &&
		binary.BigEndian.Uint32(data[4:]) == ls.keyTS
}

// keyframeStart reports whether data, a plaintext RTP packet of publisher
// src as stored (no header extension but AV1's descriptor), starts a keyframe (or its parameter sets).
func (c *core) keyframeStart(src route.SessionID, data []byte) bool {
	s := c.tbl.Session(src)
	if s == nil {
		return false
	}
	off := payloadOffset(data) // an AV1 packet keeps its dependency descriptor (svcav1.go)
	if off < 0 || off >= len(data) {
		return false
	}
	return gop.Classify(s.Tracks[route.KindVideo].Codec, data[off:]) != gop.Other
}

// onLayerSR records a simulcast layer's SR and hands it to the cores with
// players, like onPublisherSR does for a track.
func (c *core) onLayerSR(s *route.Session, q *simPub, si rtcpx.SenderInfo) {
	l := uint8(0)
	for ; l < s.Simulcast.N && q.ssrc[l] != si.SSRC; l++ {
	}
	if l == s.Simulcast.N || si.SSRC == 0 {
		return
	}
	q.rs[l].OnSR(si.NTP, si.RTPTime, c.now)
	src := rtcpx.SRSource{NTP: si.NTP, RTPTime: si.RTPTime, At: c.now}
	v := c.view(s.Stream)
	if v == nil {
		return
	}
	v.lsr[l] = streamSR{src: src, pub: s.ID, epoch: s.Epoch, ok: true}
	c.shareSR(s, v, route.KindVideo, l, s.Simulcast.N, src)
}

// srOf is the publisher SR a player's SR of kind is translated from: its
// current layer's for simulcast video.
func (v *streamView) srOf(st *sessState, kind route.Kind) *streamSR {
	ot := &st.out[kind]
	if kind != route.KindVideo || st.lay.src == 0 || st.lay.src != ot.src || st.lay.epoch != ot.srcEpoch {
		return &v.sr[kind]
	}
	return &v.lsr[min(st.lay.cur, route.MaxLayers-1)]
}

// topLayerSSRC is the learnt SSRC of a simulcast publisher's highest
// layer, the one its tap (RTC→RTMP/HLS) takes; 0 if none.
func (c *core) topLayerSSRC(s *route.Session) uint32 {
	if int(s.ID) >= len(c.sess) {
		return 0
	}
	if q := c.sess[s.ID].pub; q != nil && q.sim != nil {
		return q.sim.ssrc[0]
	}
	return 0
}

// playerKeyframe asks a keyframe for player s: from the simulcast layer it
// follows, else from its stream's publisher.
func (c *core) playerKeyframe(s *route.Session, st *sessState) {
	if ls := &st.lay; ls.src != 0 && ls.cur < route.MaxLayers {
		if pub := c.publisherOf(c.tbl, s.Stream); pub != nil && pub.ID == ls.src && pub.Epoch == ls.epoch {
			c.askLayerKeyframe(ls.src, ls.cur)
			return
		}
	}
	c.keyframeFor(s.Stream)
}
