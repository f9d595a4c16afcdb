package rtph264

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Frame is one depacketized access unit.
type Frame struct {
	NALUs [][]byte
	TS    uint32
	// Key is set when the unit has an IDR; SPS and PPS are then included.
	Key bool
}

// Depacketizer rebuilds access units from RTP packets.
type Depacketizer struct {
	nalus    [][]byte
	fu       []byte
	inFU     bool
	ts       uint32
	seq      uint16
	started  bool // a packet has been seen
	open     bool // a frame is in progress
	broken   bool // the frame in progress lost a packet
	waitKey  bool // drop frames until the next IDR
	sps, pps []byte
}

// NewDepacketizer returns a depacketizer that waits for a first IDR.
func NewDepacketizer() *Depacketizer { return &Depacketizer{waitKey: true} }

// Push takes one RTP packet (sequence number, timestamp, marker, payload).
// It returns a completed frame when one ends, and ErrLoss when a sequence
// gap dropped the frame in progress. The payload is copied.
func (d *Depacketizer) Push(seq uint16, ts uint32, marker bool, payload []byte) (*Frame, error) {
	var out *Frame
	var err error
	if d.started && seq != d.seq+1 {
		d.reset()
		d.waitKey, err = true, ErrLoss
	} else if d.open && ts != d.ts {
		out = d.finish() // the previous frame ended without a marker
	}
	d.started, d.seq = true, seq
	if !d.open {
		d.open, d.ts = true, ts
	}
	if perr := d.payload(payload); perr != nil {
		d.broken = true
		if err == nil {
			err = perr
		}
	}
	if marker {
		if f := d.finish(); f != nil {
			out = f
		}
	}
	return out, err
}

func (d *Depacketizer) reset() {
	d.nalus, d.fu, d.inFU, d.open, d.broken = d.nalus[:0], d.fu[:0], false, false, false
}

// finish closes the frame in progress and returns it if it is usable.
func (d *Depacketizer) finish() *Frame {
	defer d.reset()
	if d.broken || d.inFU || len(d.nalus) == 0 {
		if d.broken || d.inFU {
			d.waitKey = true
		}
		return nil
	}
	f := &Frame{TS: d.ts}
	for _, n := range d.nalus {
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeSPS:
			d.sps = n
		case h264.NALUTypePPS:
			d.pps = n
		case h264.NALUTypeIDR:
			f.Key = true
		}
	}
	if f.Key {
		if d.sps == nil || d.pps == nil {
			return nil
		}
		d.waitKey = false
		f.NALUs = append(f.NALUs, d.sps, d.pps)
	} else if d.waitKey {
		return nil
	}
	for _, n := range d.nalus {
		if t := h264.NALUType(n[0] & 0x1F); t != h264.NALUTypeSPS && t != h264.NALUTypePPS {
			f.NALUs = append(f.NALUs, n)
		}
	}
	d.nalus = nil // handed over to f
	return f
}

// payload parses one RTP payload (RFC 6184 5.6-5.8).
func (d *Depacketizer) payload(b []byte) error {
	if len(b) < 1 {
		return ErrBadPacket
	}
	switch t := b[0] & 0x1F; {
	case t >= 1 && t <= 23:
		if d.inFU {
			return ErrBadPacket
		}
		d.nalus = append(d.nalus, append([]byte(nil), b...))
	case t == naluSTAPA:
		return d.stapA(b[1:])
	case t == naluFUA:
		return d.fuA(b)
	default:
		return ErrBadPacket
	}
	return nil
}

func (d *Depacketizer) stapA(b []byte) error {
	if d.inFU {
		return ErrBadPacket
	}
	for len(b) > 0 {
		if len(b) < 2 {
			return ErrBadPacket
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n == 0 || n > len(b) {
			return ErrBadPacket
		}
		d.nalus = append(d.nalus, append([]byte(nil), b[:n]...))
		b = b[n:]
	}
	return nil
}

func (d *Depacketizer) fuA(b []byte) error {
	if len(b) < 3 {
		return ErrBadPacket
	}
	start, end := b[1]&0x80 != 0, b[1]&0x40 != 0
	switch {
	case start && !d.inFU:
		d.inFU = true
		d.fu = append(d.fu[:0], b[0]&0xE0|b[1]&0x1F)
	case start || !d.inFU:
		return ErrBadPacket
	}
	d.fu = append(d.fu, b[2:]...)
	if end {
		d.inFU = false
		d.nalus = append(d.nalus, append([]byte(nil), d.fu...))
	}
	return nil
}
