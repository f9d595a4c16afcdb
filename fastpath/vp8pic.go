package fastpath

// VP8 picture ID continuity across simulcast switches. Each simulcast
// encoding numbers its frames with its own VP8 picture ID and TL0PICIDX
// (RFC 7741 §4.2). A player's decoder orders frames by picture ID:
// Chromium unwraps it into a frame id and drops a frame whose id is not
// above the last one it decoded, keyframe or not. A switch to a layer whose
// picture IDs run behind the old one's (half the switches, at random)
// therefore froze the player until the counters drifted or a later
// keyframe reset its decoder (the 2.9–3.8 s freezes of issue 18). Like the
// seq/ts rewrite (outTrack.rebase), the player's picture ID and TL0PICIDX
// run on from the old layer's: a switch sets offsets that every packet
// sent to it afterwards (resends too) gets, in place, allocation-free.

// vp8Pic is a player's VP8 descriptor rewrite on a simulcast source
// (layerSel.pic).
type vp8Pic struct {
	on       bool   // the source is VP8: rewrite
	picDelta uint16 // added to the picture ID (mod its 7 or 15 bits)
	tl0Delta uint8  // added to TL0PICIDX
	lastPic  uint16 // picture ID of the last packet passed, as sent
	lastTL0  uint8
	seen     bool // lastPic/lastTL0 hold a value
}

// vp8Fields finds the picture ID and TL0PICIDX in a VP8 payload
// descriptor: their offsets in p (-1 = absent) and whether the picture ID
// has 15 bits.
func vp8Fields(p []byte) (picOff, tl0Off int, long bool) {
	const bitX, bitI, bitL = 0x80, 0x80, 0x40
	picOff, tl0Off = -1, -1
	if len(p) < 2 || p[0]&bitX == 0 {
		return
	}
	off := 2
	if p[1]&bitI != 0 {
		if len(p) <= off {
			return
		}
		picOff, long = off, p[off]&0x80 != 0
		off++
		if long {
			off++
		}
	}
	if p[1]&bitL != 0 && off < len(p) {
		tl0Off = off
	}
	if picOff >= 0 && off > len(p) {
		picOff = -1
	}
	return
}

// readPic returns the picture ID and TL0PICIDX at the offsets vp8Fields found.
func readPic(p []byte, picOff, tl0Off int, long bool) (pic uint16, tl0 uint8) {
	switch {
	case picOff < 0:
	case long:
		pic = uint16(p[picOff]&0x7f)<<8 | uint16(p[picOff+1])
	default:
		pic = uint16(p[picOff] & 0x7f)
	}
	if tl0Off >= 0 {
		tl0 = p[tl0Off]
	}
	return
}

// writePic adds the offsets to the picture ID and TL0PICIDX of the VP8
// payload p in place, and returns the new values.
func (v *vp8Pic) writePic(p []byte) (uint16, uint8, bool) {
	picOff, tl0Off, long := vp8Fields(p)
	if picOff < 0 && tl0Off < 0 {
		return 0, 0, false
	}
	pic, tl0 := readPic(p, picOff, tl0Off, long)
	pic, tl0 = pic+v.picDelta, tl0+v.tl0Delta
	switch {
	case picOff < 0:
	case long:
		pic &= 0x7fff
		p[picOff], p[picOff+1] = 0x80|byte(pic>>8), byte(pic)
	default:
		pic &= 0x7f
		p[picOff] = byte(pic)
	}
	if tl0Off >= 0 {
		p[tl0Off] = tl0
	}
	return pic, tl0, true
}

// note records the picture ID the player gets for a passed packet pkt
// (as stored).
func (v *vp8Pic) note(pkt []byte) {
	if !v.on {
		return
	}
	off := payloadOffset(pkt)
	if off < 0 {
		return
	}
	p := pkt[off:]
	picOff, tl0Off, long := vp8Fields(p)
	if picOff < 0 {
		return
	}
	pic, tl0 := readPic(p, picOff, tl0Off, long)
	v.lastPic, v.lastTL0, v.seen = (pic+v.picDelta)&0x7fff, tl0+v.tl0Delta, true
}

// rebase sets the offsets at a switch whose first packet is pkt (as
// stored), so its picture ID follows the last one the player got.
func (v *vp8Pic) rebase(pkt []byte) {
	off := payloadOffset(pkt)
	if !v.on || !v.seen || off < 0 {
		return
	}
	p := pkt[off:]
	picOff, tl0Off, long := vp8Fields(p)
	if picOff < 0 {
		return
	}
	pic, tl0 := readPic(p, picOff, tl0Off, long)
	v.picDelta, v.tl0Delta = v.lastPic+1-pic, v.lastTL0+1-tl0
}

// rewrite applies the offsets to the packet buf[:n] about to be sent.
func (v *vp8Pic) rewrite(buf []byte, n int) {
	if !v.on || v.picDelta == 0 && v.tl0Delta == 0 {
		return
	}
	if off := payloadOffset(buf[:n]); off >= 0 {
		v.writePic(buf[off:n])
	}
}
