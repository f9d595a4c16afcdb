package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// RTCP packet types and feedback formats (RFC 3550 §12.1, RFC 4585 §6).
const (
	rtcpRTPFB   = 205
	rtcpPSFB    = 206
	fmtNACK     = 1
	fmtPLI      = 1
	fmtFIR      = 4 // RFC 5104 §4.3.1
	rtcpMinSize = 4
)

// onRTCP handles a compound RTCP packet. From players it takes PLI/FIR
// (coalesced into one keyframe request to the publisher) and counts NACKs;
// from publishers it only counts for now.
func (c *core) onRTCP(s *route.Session, st *sessState, b []byte) {
	plain, err := st.rx.DecryptRTCP(b, b, &c.rhdr)
	if err != nil {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	c.cnt.rtcpIn.Add(1)
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
		c.onRTCPPacket(s, plain[0]&0x1f, plain[1])
		plain = plain[size:]
	}
}

func (c *core) onRTCPPacket(s *route.Session, format, pt uint8) {
	switch {
	case pt == rtcpPSFB && format == fmtPLI:
		c.cnt.pliIn.Add(1)
		if s.Role == route.RolePlayer {
			c.keyframeFor(s.Stream)
		}
	case pt == rtcpPSFB && format == fmtFIR:
		c.cnt.firIn.Add(1)
		if s.Role == route.RolePlayer {
			c.keyframeFor(s.Stream)
		}
	case pt == rtcpRTPFB && format == fmtNACK:
		c.cnt.nackIn.Add(1)
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
	c.out.Commit(len(enc), &st.peer, uint64(st.id)<<32|uint64(st.epoch))
	c.cnt.pliOut.Add(1)
}
