package dtlsguard

import (
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// FuzzCheck: Check never panics, and what it passes pion's own parsers
// frame the same way: the records split, and every plaintext handshake
// fragment lies inside its record and its message. Seeds under
// testdata/fuzz/FuzzCheck are datagrams of a real pion/dtls handshake.
func FuzzCheck(f *testing.F) {
	f.Add(AppendAlert(nil, 1, AlertDecodeError))
	f.Add([]byte{ContentHandshake, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, ServerHelloDone, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		p := Check(d)
		_ = p.String()
		_, _ = MaxSeq(d, 0)
		if p.Fault != OK {
			if p.Fault.Alert() == 0 {
				t.Fatalf("%v has no alert", p)
			}
			return
		}
		recs, err := recordlayer.UnpackDatagram(d)
		if err != nil && len(d) > 0 {
			t.Fatalf("passed, but pion cannot split it: %v", err)
		}
		for _, r := range recs {
			var h recordlayer.Header
			if err := h.Unmarshal(r); err != nil {
				t.Fatalf("passed, but pion rejects the record header: %v", err)
			}
			if h.ContentType != ContentHandshake || h.Epoch != 0 {
				continue
			}
			for b := r[recordlayer.FixedHeaderSize:]; len(b) > 0; {
				var hh handshake.Header
				if err := hh.Unmarshal(b); err != nil {
					t.Fatalf("passed, but pion rejects the handshake header: %v", err)
				}
				end := handshake.HeaderLength + int(hh.FragmentLength)
				if end > len(b) || hh.FragmentOffset+hh.FragmentLength > hh.Length {
					t.Fatalf("passed a fragment outside its record or message: %+v", hh)
				}
				b = b[end:]
			}
		}
	})
}
