package nack

import "testing"

// FuzzPacket feeds arbitrary bytes to every parser of the package: a NACK
// FCI list, and sequence numbers for the receiver. None may panic.
func FuzzPacket(f *testing.F) {
	f.Add([]byte{0, 100, 0x80, 0x01}, uint16(1))
	f.Add(rtpPacket(7, 97, 10), uint16(2))
	f.Add([]byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff}, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, seq uint16) {
		n := 0
		if got := ParseNACK(data, func(uint16) { n++ }); got != n || n > len(data)/4*17 {
			t.Fatalf("ParseNACK count %d calls %d", got, n)
		}
		var r Receiver
		r.Push(seq, 0)
		for i := 0; i+1 < len(data); i += 2 {
			r.Push(uint16(data[i])<<8|uint16(data[i+1]), int64(i)*1e6)
		}
		_ = r.Collect(2e9, 0, make([]uint16, 0, 8))
	})
}
