package rtph264

import (
	"encoding/binary"
	"testing"
)

// FuzzDepacketizer feeds arbitrary payloads (split on a 2-byte length
// prefix) to the depacketizer: it must never panic, and every frame it
// returns must hold non-empty NAL units.
func FuzzDepacketizer(f *testing.F) {
	p := NewPacketizer(102, 1, 0)
	for _, au := range [][][]byte{{sps, pps, slice(5, 2, 2600)}, {slice(1, 0, 40)}} {
		var seed []byte
		for _, pkt := range p.Packetize(nil, au, 0) {
			seed = binary.BigEndian.AppendUint16(seed, uint16(len(pkt)-headerLen))
			seed = append(seed, pkt[1]&0x80)
			seed = append(seed, pkt[headerLen:]...)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDepacketizer()
		for seq := uint16(0); len(data) >= 3; seq++ {
			n := int(binary.BigEndian.Uint16(data))
			marker := data[2]&0x80 != 0
			data = data[3:]
			n = min(n, len(data))
			fr, _ := d.Push(seq, uint32(seq/4)*3000, marker, data[:n])
			data = data[n:]
			if fr == nil {
				continue
			}
			for _, nal := range fr.NALUs {
				if len(nal) == 0 {
					t.Fatal("empty NAL unit in frame")
				}
			}
		}
	})
}
