package fastpath

import (
	"encoding/binary"

	"github.com/fanout/fanout/fastpath/route"
)

// Padding-only packets of simulcast layers. A browser's send-side
// bandwidth estimator probes by sending RTP packets whose payload is all
// padding (RFC 3550 §5.1, P bit), and without RTX it sends them on a media
// SSRC: Chromium pads its lowest simulcast layer, hundreds of packets a
// second while it ramps up. Forwarded, they would fill the very links the
// players on that layer were moved down for, so a player is not sent
// them: each one is taken out of its sequence numbering (as svc.go does
// for dropped temporal layers), so it sees no gap to NACK. Single-encoding
// publishers' packets are forwarded as they are.

// paddingOnly reports whether the stripped RTP packet p carries only
// padding.
func paddingOnly(p []byte) bool {
	if len(p) < 13 || p[0]&0x20 == 0 {
		return false
	}
	hl := 12 + 4*int(p[0]&0x0f)
	return hl < len(p) && int(p[len(p)-1]) == len(p)-hl
}

// skipPadding takes a padding-only packet of publisher src out of player
// pst's video numbering: later packets move back by one, and NACKs for
// what was sent before it are no longer mapped (its rewrite offset changed).
func (c *core) skipPadding(pst *sessState, src route.SessionID, epoch uint32, data []byte) {
	ot := &pst.out[route.KindVideo]
	if !ot.started || ot.src != src || ot.srcEpoch != epoch || len(data) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(data[2:]) + ot.seqDelta
	if int16(seq-ot.lastSeq) <= 0 {
		return // late: the numbering has moved past it
	}
	ot.seqDelta--
	ot.firstSeq = ot.lastSeq + 1
	c.cnt.paddingDrops.Add(1)
}
