package nack

import "testing"

// FuzzPacket feeds arbitrary bytes to every parser of the package: a NACK
// FCI list, an RTX packet to unwrap and an RTP packet to wrap. None may
// panic or write past dst.
func FuzzPacket(f *testing.F) {
	f.Add([]byte{0, 100, 0x80, 0x01}, uint16(1))
	f.Add(rtpPacket(7, 97, 10), uint16(2))
	f.Add([]byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff}, uint16(3))
	dst := make([]byte, 1600)
	f.Fuzz(func(t *testing.T, data []byte, seq uint16) {
		n := 0
		if got := ParseNACK(data, func(uint16) { n++ }); got != n || n > len(data)/4*17 {
			t.Fatalf("ParseNACK count %d calls %d", got, n)
		}
		if m, ok := BuildRTX(dst, data, 1, 97, seq); ok && m > len(data)+2 {
			t.Fatalf("RTX of %d bytes is %d", len(data), m)
		}
		if m, _, ok := UnwrapRTX(dst, data, 1, 96); ok && m > len(data)-2 {
			t.Fatalf("unwrapped %d bytes to %d", len(data), m)
		}
		var r Receiver
		r.Push(seq, 0)
		for i := 0; i+1 < len(data); i += 2 {
			r.Push(uint16(data[i])<<8|uint16(data[i+1]), int64(i)*1e6)
		}
		_ = r.Collect(2e9, 0, make([]uint16, 0, 8))
	})
}
