package fastpath

import (
	"encoding/binary"
	"net/netip"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// onRTCP decrypts and handles a compound RTCP packet.
func (c *core) onRTCP(s *route.Session, st *sessState, b []byte) {
	plain, err := st.rx.DecryptRTCP(b, b, &c.rhdr)
	if err != nil {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	c.alive(s, st)
	c.cnt.rtcpIn.Add(1)
	c.handleRTCP(s, st, plain)
}

// handleRTCP walks a decrypted compound RTCP packet of session s (RFC 3550
// §6.1, rtcpx.Walk). It acts only on s's own state, its stream's publisher
// (keyframe requests, history lookups), its tap and counters: whatever s
// sends, no other session is touched (FuzzRTCP). A malformed packet stops
// the walk and is counted; the packets before it stay handled.
func (c *core) handleRTCP(s *route.Session, st *sessState, plain []byte) {
	if _, ok := rtcpx.Walk(plain, func(pt, count uint8, p []byte) {
		c.onRTCPPacket(s, st, pt, count, p)
	}); !ok {
		c.cnt.drops[DropRTCPMalformed].Add(1)
	}
}

// onRTCPPacket handles one packet of a compound. From players: PLI/FIR
// (coalesced into one keyframe request to the publisher), NACK (served from
// the history), RR (loss, jitter, RTT), transport-wide feedback (its
// bandwidth estimate). From publishers: SR (to its tap for
// rtc_to_rtmp, RR's LSR, SRs to players), XR DLRR (RTT).
func (c *core) onRTCPPacket(s *route.Session, st *sessState, pt, format uint8, p []byte) {
	player := s.Role == route.RolePlayer
	switch {
	case pt == rtcpx.TypePSFB && (format == rtcpx.FmtPLI || format == rtcpx.FmtFIR):
		if format == rtcpx.FmtPLI {
			c.cnt.pliIn.Add(1)
		} else {
			c.cnt.firIn.Add(1)
		}
		if player {
			st.pq.plis++
			c.playerKeyframe(s, st) // its simulcast layer's, or the stream's (layers.go)
		}
	case pt == rtcpx.TypeRTPFB && format == rtcpx.FmtNACK:
		c.cnt.nackIn.Add(1)
		if player {
			c.onPlayerNACK(s, st, p)
		}
	case pt == rtcpx.TypeRTPFB && format == rtcpx.FmtTCC && player:
		c.onPlayerTWCC(s, st, p) // its bandwidth estimate (playerbwe.go)
	case (pt == rtcpx.TypeRR || pt == rtcpx.TypeSR) && player:
		c.onPlayerRR(s, st, p)
	case pt == rtcpx.TypeSR:
		c.tapSR(s, p) // rtc_to_rtmp (tap.go)
		if st.pub != nil {
			c.onPublisherSR(s, st.pub, p)
		}
	case pt == rtcpx.TypeXR && st.pub != nil:
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
		if s == nil || !st.owned || st.tx == nil && !s.Virtual || s.Tracks[route.KindVideo].SSRC == 0 && s.Simulcast.N == 0 {
			st.keyframeWanted = false
			continue
		}
		if st.lastKeyframeReq != 0 && c.now-st.lastKeyframeReq < int64(keyframeInterval) {
			keep = append(keep, pid)
			continue
		}
		if s.Virtual {
			// No peer to send a PLI to: control hands it to the source.
			c.e.upcall(c, route.UpKeyframe, pid, netip.AddrPort{}, nil)
		} else {
			c.sendKeyframeRequest(st, s) // one PLI, or one per simulcast layer asked (layers.go)
		}
		st.lastKeyframeReq = c.now
		st.keyframeWanted = false
	}
	c.want = keep
}

// sendPLI queues an encrypted Picture Loss Indication (RFC 4585 §6.3.1).
func (c *core) sendPLI(st *sessState, mediaSSRC uint32) {
	buf := c.outBuf()
	buf[0], buf[1] = 0x80|rtcpx.FmtPLI, rtcpx.TypePSFB
	binary.BigEndian.PutUint16(buf[2:], 2)
	binary.BigEndian.PutUint32(buf[4:], fanoutSSRC) // Fanout sends no media to publishers
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
