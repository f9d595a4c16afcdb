package twcc

import (
	"testing"

	"github.com/pion/rtcp"
)

// FuzzExtensionAndFeedback: FindExtension and ParseFeedback never panic on
// any input, and
// a Recorder fed arbitrary (seq, time) pairs always builds feedback that
// pion/rtcp parses.
func FuzzExtensionAndFeedback(f *testing.F) {
	f.Add([]byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x31, 0xbe, 0xef, 0}, uint8(3))
	f.Add([]byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0x10, 0x00, 0, 1, 3, 2, 1, 2}, uint8(3))
	dst := make([]byte, 300)
	arrivals := make([]Arrival, 64)
	f.Fuzz(func(t *testing.T, data []byte, id uint8) {
		_, _ = FindExtension(data, id)
		_, _ = ParseFeedback(data, arrivals)
		var r Recorder
		at := int64(1e9)
		for i := 0; i+2 < len(data); i += 3 {
			at += int64(data[i+2]) * int64(data[i+2]) * 1e5 // up to 6.5 s steps
			r.Record(uint16(data[i])<<8|uint16(data[i+1]), at)
		}
		for k := 0; r.Pending() && k < 100; k++ {
			n, ok := r.BuildFeedback(dst, 1, 2, uint8(k))
			if !ok {
				t.Fatal("pending without feedback")
			}
			var fb rtcp.TransportLayerCC
			if err := fb.Unmarshal(dst[:n]); err != nil {
				t.Fatalf("pion rejects %x: %v", dst[:n], err)
			}
			if _, ok := ParseFeedback(dst[12:n], arrivals); !ok {
				t.Fatalf("ParseFeedback rejects %x", dst[:n])
			}
		}
	})
}
