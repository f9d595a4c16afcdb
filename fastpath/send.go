package fastpath

import (
	"encoding/binary"
	"time"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/srtpx"
)

// Egress, scatter → flush: at the end of each round a core rewrites every
// packet queued for its players (per-player SSRC, payload type and seq/ts
// offsets that keep one continuous stream across republish), encrypts it
// (fastpath/srtpx) into the out batch, and flushes the batch with sendmmsg
// and UDP GSO (fastpath/udpio), or frames it onto a TCP peer's connection
// (fastpath/tcpio). RTCP the core builds (NACK, PLI, RR, SR, TWCC) goes out
// through the same batch.

// outTrack is a player's rewrite state for one kind. Sequence numbers and
// timestamps are re-based when the source publisher changes, so a player
// sees one continuous stream across republish.
type outTrack struct {
	src      route.SessionID
	srcEpoch uint32
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   int64 // ns since engine start of the last forwarded packet
	started  bool
	firstSeq uint16 // first sequence number sent from the current source
	// packets and octets sent, for the player's SRs and counters
	packets, octets uint64
	roc             srtpx.ROC // SRTP rollover counter of the sequence numbers sent
}

// scatter sends this round's queued packets to my players, player by
// player, so each player's packets of the round sit back to back in the
// out batch and go out as one GSO send where their sizes allow: video
// first, then audio, because a GSO run's last segment may be shorter, so
// an audio packet can ride at the end of a frame's run. Order within a
// track is kept. It then drops the round's references.
func (c *core) scatter() {
	for i, p := range c.pend {
		if p == nil {
			continue
		}
		sid := p.stream
		v := c.view(sid)
		if v != nil {
			for _, pid := range v.mine {
				ps := c.tbl.Session(pid)
				if ps == nil || !ps.Ready() {
					continue
				}
				pst := &c.sess[pid]
				if pst.tx == nil {
					continue
				}
				if !pst.pq.joining && !pst.pq.cur.on && !c.heldForKeyframe(ps, pst, c.pend[i].src) { // a paced replay sends it from the cache
					c.forwardKind(ps, pst, c.pend[i:], sid, route.KindVideo)
				}
				c.forwardKind(ps, pst, c.pend[i:], sid, route.KindAudio)
			}
		}
		for j := i; j < len(c.pend); j++ {
			if q := c.pend[j]; q != nil && q.stream == sid {
				if v != nil {
					v.rates.note(q) // layer rates for the estimators (playerbwe.go)
				}
				c.pend[j] = nil
				c.release(q)
			}
		}
	}
	c.pend = c.pend[:0]
}

// forwardKind forwards the pending packets of stream sid and track kind.
func (c *core) forwardKind(ps *route.Session, pst *sessState, pend []*pkt, sid route.StreamID, kind route.Kind) {
	for _, q := range pend {
		if q != nil && q.stream == sid && q.kind == kind {
			c.forward(ps, pst, q)
		}
	}
}

// forward rewrites p for one player and queues it encrypted.
func (c *core) forward(ps *route.Session, pst *sessState, p *pkt) {
	if p.layers != 0 && !c.passLayer(ps, pst, p.src, p.srcEpoch, p.layer, p.layers, p.data()) {
		return // simulcast: another layer than the player's (layers.go)
	}
	if p.layers != 0 && paddingOnly(p.data()) {
		c.skipPadding(pst, p.src, p.srcEpoch, p.data()) // a probe's padding (padding.go)
		return
	}
	if p.tid != noTID && !c.passTemporal(ps, pst, p.src, p.srcEpoch, p.tid, p.tstart, p.layers, p.data()) {
		return // SVC: a temporal layer above the player's (svc.go)
	}
	c.sendRTP(ps, pst, p.kind, p.src, p.srcEpoch, p.data())
}

// sendRTP sends a player one plaintext packet of publisher src, moving its
// rewrite state: re-based when the source changed, and last seq/ts
// advanced unless the packet is a late one (a repaired loss).
func (c *core) sendRTP(ps *route.Session, pst *sessState, kind route.Kind, src route.SessionID, epoch uint32, pkt []byte) {
	tr := &ps.Tracks[kind]
	if tr.SSRC == 0 {
		return
	}
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	ot := &pst.out[kind]
	rebased := !ot.started || ot.src != src || ot.srcEpoch != epoch
	if rebased {
		ot.rebase(seq, ts, c.now, src, epoch, tr.ClockRate)
	}
	seq += ot.seqDelta
	ts += ot.tsDelta
	if rebased || int16(seq-ot.lastSeq) > 0 {
		ot.lastSeq, ot.lastTS, ot.lastAt = seq, ts, c.now
	}
	c.emitRTP(ps, pst, kind, pkt, seq, ts)
}

// emitRTP writes pkt for player ps with its payload type and SSRC and the
// given seq and ts, encrypts it and queues it.
func (c *core) emitRTP(ps *route.Session, pst *sessState, kind route.Kind, pkt []byte, seq uint16, ts uint32) bool {
	tr := &ps.Tracks[kind]
	buf := c.outBuf()
	n := c.copyRTP(ps, pst, buf, pkt) // with its transport sequence number (playerbwe.go)
	if kind == route.KindVideo && pst.lay.pic.on && pst.lay.src == pst.out[kind].src {
		pst.lay.pic.rewrite(buf, n) // picture ID continuity across layer switches (vp8pic.go)
	}
	buf[1] = buf[1]&0x80 | tr.PT&0x7f
	binary.BigEndian.PutUint16(buf[2:], seq)
	binary.BigEndian.PutUint32(buf[4:], ts)
	binary.BigEndian.PutUint32(buf[8:], tr.SSRC)
	ot := &pst.out[kind]
	m, err := pst.snd.Protect(buf, n, ot.roc.Next(seq))
	if err != nil {
		c.cnt.drops[DropSRTP].Add(1)
		return false
	}
	c.emit(pst, m, uint64(ps.ID)<<32|uint64(ps.Epoch))
	c.lc.txBytes += uint64(m)
	ot.packets++
	ot.octets += uint64(n - 12)
	return true
}

// emit sends the n bytes just written into the out batch's free slot to
// st's peer: queued for sendmmsg, or framed onto its TCP connection (the
// slot is then reused at once).
func (c *core) emit(st *sessState, n int, tag uint64) {
	if st.tcp {
		if c.e.tcp == nil || !c.e.tcp.Write(st.peerAP, c.out.Buf()[:n]) {
			c.cnt.drops[DropSendFailed].Add(1)
			return
		}
		c.tcpDirty = true
		c.cnt.txPackets.Add(1)
		return
	}
	c.out.Commit(n, &st.peer, tag)
}

// flush sends the out batch; a GSO failure turns GSO off on every core.
func (c *core) flush() {
	if c.tcpDirty {
		c.tcpDirty = false
		c.e.tcp.Flush()
	}
	if c.out.N == 0 {
		return
	}
	if c.xsk != nil { // AF_XDP mode: frames on the TX ring (xsk.go)
		sent, dropped := c.xsk.Flush(c.out, c.conn)
		c.cnt.txPackets.Add(uint64(sent))
		if dropped > 0 {
			c.cnt.drops[DropSendFailed].Add(uint64(dropped))
		}
		return
	}
	gsoSends, gsoSegs := c.out.GSOCounts()
	sent, dropped, gsoFailed := c.out.Flush(c.conn)
	c.cnt.txPackets.Add(uint64(sent))
	if dropped > 0 {
		c.cnt.drops[DropSendFailed].Add(uint64(dropped))
	}
	if gsoFailed {
		c.e.gsoOff.Store(true)
		return
	}
	c.cnt.gsoSends.Add(uint64(gsoSends))
	c.cnt.gsoSegments.Add(uint64(gsoSegs))
}

// rebase makes the next forwarded packet follow the last one sent: one
// sequence number later, and a timestamp advanced by the wall time since.
func (o *outTrack) rebase(seq uint16, ts uint32, now int64, src route.SessionID, epoch, clock uint32) {
	if !o.started {
		o.seqDelta, o.tsDelta = 0, 0
	} else {
		o.seqDelta = o.lastSeq + 1 - seq
		elapsed := uint32(0)
		if clock > 0 && now > o.lastAt {
			elapsed = uint32(uint64(now-o.lastAt) * uint64(clock) / uint64(time.Second))
		}
		if elapsed == 0 {
			elapsed = 1
		}
		o.tsDelta = o.lastTS + elapsed - ts
	}
	o.src, o.srcEpoch, o.started = src, epoch, true
	o.firstSeq = seq + o.seqDelta
}

// outBuf returns room for one datagram in the out batch, flushing it when full.
func (c *core) outBuf() []byte {
	buf := c.out.Buf()
	if buf == nil {
		c.flush()
		buf = c.out.Buf()
	}
	return buf
}

// commitRTCP encrypts the n-byte plaintext RTCP at the start of buf (the
// last outBuf) in place and queues it for session st.
func (c *core) commitRTCP(st *sessState, buf []byte, n int) bool {
	enc, err := st.tx.EncryptRTCP(buf, buf[:n], &c.rhdr)
	if err != nil || len(enc) > len(buf) || &enc[0] != &buf[0] {
		c.cnt.drops[DropSRTP].Add(1)
		return false
	}
	c.emit(st, len(enc), uint64(st.id)<<32|uint64(st.epoch))
	c.cnt.rtcpOut.Add(1)
	return true
}
