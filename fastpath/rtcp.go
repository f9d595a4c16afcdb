package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// RTCP packet types and feedback formats (RFC 3550 §12.1, RFC 4585 §6).
const (
	rtcpRR      = 201
	rtcpXR      = 207
	rtcpRTPFB   = 205
	rtcpPSFB    = 206
	fmtNACK     = 1
	fmtPLI      = 1
	fmtFIR      = 4 // RFC 5104 §4.3.1
	rtcpMinSize = 4
)

// onRTCP decrypts and handles a compound RTCP packet.
func (c *core) onRTCP(s *route.Session, st *sessState, b []byte) {
	plain, err := st.rx.DecryptRTCP(b, b, &c.rhdr)
	if err != nil {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	c.cnt.rtcpIn.Add(1)
	c.tapRTCP(s, plain) // sender reports for rtc_to_rtmp (tap.go)
	c.handleRTCP(s, st, plain)
}

// handleRTCP walks a decrypted compound RTCP packet of session s (RFC 3550
// §6.1). It acts only on s's own state, its stream's publisher (keyframe
// requests, history lookups) and counters: whatever s sends, no other
// session is touched (FuzzRTCP). A malformed packet stops the walk.
func (c *core) handleRTCP(s *route.Session, st *sessState, plain []byte) {
	for len(plain) >= rtcpMinSize {
		if plain[0]>>6 != 2 {
			c.cnt.drops[DropRTCPMalformed].Add(1)
			return
		}
		size := 4 * (int(binary.BigEndian.Uint16(plain[2:])) + 1)
		if size > len(plain) {
			c.cnt.drops[DropRTCPMalformed].Add(1)
			return
		}
		p := plain[:size]
		if p[0]&0x20 != 0 && size == len(plain) { // RFC 3550 §6.4.1: padding, last packet only
			if pad := int(p[size-1]); pad > 0 && pad <= size-rtcpMinSize {
				p = p[:size-pad]
			}
		}
		c.onRTCPPacket(s, st, p)
		plain = plain[size:]
	}
}

// onRTCPPacket handles one packet of a compound. From players: PLI/FIR
// (coalesced into one keyframe request to the publisher), NACK (served from
// the history), RR (loss, jitter, RTT). From publishers: SR (RR's LSR, SRs
// to players), XR DLRR (RTT).
func (c *core) onRTCPPacket(s *route.Session, st *sessState, p []byte) {
	format, pt := p[0]&0x1f, p[1]
	player := s.Role == route.RolePlayer
	switch {
	case pt == rtcpPSFB && (format == fmtPLI || format == fmtFIR):
		if format == fmtPLI {
			c.cnt.pliIn.Add(1)
		} else {
			c.cnt.firIn.Add(1)
		}
		if player {
			st.pq.plis++
			c.keyframeFor(s.Stream)
		}
	case pt == rtcpRTPFB && format == fmtNACK:
		c.cnt.nackIn.Add(1)
		if player {
			c.onPlayerNACK(s, st, p)
		}
	case (pt == rtcpRR || pt == rtcpSR) && player && len(p) >= 8:
		c.onPlayerRR(s, st, p)
	case pt == rtcpSR && st.pub != nil:
		c.onPublisherSR(s, st.pub, p)
	case pt == rtcpXR && st.pub != nil:
		c.onPublisherXR(st.pub, p)
	}
}

// requestKeyframes sends the pending PLIs, at most one per publisher per
// keyframeInterval; the rest wait for a later batch.
func (c *core) requestKeyframes() {
	if len(c.want) == 0 {
		return
	}
	keep := c.want[:0]
	for _, pid := range c.want {
		st := &c.sess[pid]
		s := c.tbl.Session(pid)
		if s == nil || !st.owned || st.tx == nil || s.Tracks[route.KindVideo].SSRC == 0 {
			st.keyframeWanted = false
			continue
		}
		if st.lastKeyframeReq != 0 && c.now-st.lastKeyframeReq < int64(keyframeInterval) {
			keep = append(keep, pid)
			continue
		}
		c.sendPLI(st, s.Tracks[route.KindVideo].SSRC)
		st.lastKeyframeReq = c.now
		st.keyframeWanted = false
	}
	c.want = keep
}

// sendPLI queues an encrypted Picture Loss Indication (RFC 4585 §6.3.1).
func (c *core) sendPLI(st *sessState, mediaSSRC uint32) {
	buf := c.out.Buf()
	if buf == nil {
		c.flush()
		buf = c.out.Buf()
	}
	buf[0], buf[1] = 0x80|fmtPLI, rtcpPSFB
	binary.BigEndian.PutUint16(buf[2:], 2)
	binary.BigEndian.PutUint32(buf[4:], 1) // sender SSRC: Fanout sends no media to publishers
	binary.BigEndian.PutUint32(buf[8:], mediaSSRC)
	enc, err := st.tx.EncryptRTCP(buf, buf[:12], &c.rhdr)
	if err != nil || &enc[0] != &buf[0] {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	c.emit(st, len(enc), uint64(st.id)<<32|uint64(st.epoch))
	c.cnt.pliOut.Add(1)
	st.plisSent++
}
