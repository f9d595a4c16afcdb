package fastpath

import (
	"encoding/binary"
	"testing"
)

// vp8Packet is a stored RTP packet (no extension) whose VP8 descriptor has
// picture ID pic (15 bits when long, else 7) and TL0PICIDX tl0.
func vp8Packet(pic uint16, tl0 uint8, long bool) []byte {
	p := make([]byte, 12, 40)
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], pic) // any seq
	if long {
		p = append(p, 0x90, 0xc0, 0x80|byte(pic>>8), byte(pic), tl0, 0x9d)
	} else {
		p = append(p, 0x90, 0xc0, byte(pic&0x7f), tl0, 0x9d)
	}
	return p
}

func picOf(t *testing.T, pkt []byte) (uint16, uint8) {
	t.Helper()
	p := pkt[payloadOffset(pkt):]
	picOff, tl0Off, long := vp8Fields(p)
	if picOff < 0 || tl0Off < 0 {
		t.Fatalf("no picture ID or TL0PICIDX in % x", p)
	}
	return readPic(p, picOff, tl0Off, long)
}

// TestVP8PictureIDContinuity: a player switched from a layer at picture
// ID 20000 to one at 300 (behind: Chromium would drop its keyframe) gets
// 20001, 20002… and TL0PICIDX one above the last, wrapping at 15 bits and
// 8 bits; 7-bit picture IDs wrap at 7 bits; a stream never switched is
// not rewritten.
func TestVP8PictureIDContinuity(t *testing.T) {
	for _, tc := range []struct {
		long                bool
		oldPic, newPic, mod uint16
		oldTL0, newTL0      uint8
	}{
		{true, 20000, 300, 1 << 15, 7, 200},
		{true, 32767, 5, 1 << 15, 255, 3},
		{false, 100, 3, 1 << 7, 9, 9},
	} {
		v := vp8Pic{on: true}
		old := vp8Packet(tc.oldPic, tc.oldTL0, tc.long)
		v.note(old)
		out := append([]byte(nil), old...)
		v.rewrite(out, len(out))
		if pic, tl0 := picOf(t, out); pic != tc.oldPic || tl0 != tc.oldTL0 {
			t.Fatalf("before a switch: picture ID %d TL0 %d, want %d %d unchanged", pic, tl0, tc.oldPic, tc.oldTL0)
		}
		key := vp8Packet(tc.newPic, tc.newTL0, tc.long)
		v.rebase(key)
		v.note(key)
		for i := range uint16(3) {
			pkt := vp8Packet(tc.newPic+i, tc.newTL0+uint8(i), tc.long)
			v.note(pkt)
			v.rewrite(pkt, len(pkt)) // in place, as emitRTP does on its copy
			pic, tl0 := picOf(t, pkt)
			if want := (tc.oldPic + 1 + i) % tc.mod; pic != want || tl0 != tc.oldTL0+1+uint8(i) {
				t.Errorf("%+v: packet %d after the switch: picture ID %d TL0 %d, want %d %d", tc, i, pic, tl0, want, tc.oldTL0+1+uint8(i))
			}
		}
	}
	v := vp8Pic{on: true}
	pkt := vp8Packet(1, 1, true)
	zeroAllocs(t, "vp8Pic note+rewrite", func() {
		v.note(pkt)
		v.rewrite(pkt, len(pkt))
	})
	if _, _, ok := (&vp8Pic{}).writePic([]byte{0x10, 0x9d}); ok {
		t.Error("a descriptor without X rewritten")
	}
}
