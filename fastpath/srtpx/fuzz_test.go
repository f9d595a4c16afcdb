package srtpx

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// FuzzProtect feeds arbitrary bytes as a packet. Protect must not panic;
// when it succeeds, the header length it found must be pion's, and pion
// must decrypt the result back to the input (but for cryptex-marked
// extensions, which pion's oracle refuses).
func FuzzProtect(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, sh := range []pkt{{payload: 0}, {payload: 1}, {csrcs: 3, ext: 1, payload: 40}, {ext: 2, payload: 17}, {ext: 3, payload: 300}} {
		f.Add(sh.marshal(f, rng), uint32(0), uint8(0))
	}
	f.Add([]byte{0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(7), uint8(2))
	f.Add([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff}, uint32(1), uint8(3))
	type peer struct {
		s   *Sender
		dec *srtp.Context
	}
	peers := make([]peer, len(profiles))
	for i, pr := range profiles {
		s, _, dec := pair(f, pr.p, rng)
		peers[i] = peer{s, dec}
	}
	f.Fuzz(func(t *testing.T, data []byte, roc uint32, profile uint8) {
		p := peers[int(profile)%len(peers)]
		buf := make([]byte, len(data), len(data)+p.s.Overhead())
		copy(buf, data)
		n, err := p.s.Protect(buf, len(data), roc)
		if err != nil {
			return
		}
		var h rtp.Header
		hl, perr := h.Unmarshal(data)
		if perr != nil {
			return // pion also parses extension elements, which Protect does not need
		}
		if got, _ := headerLen(data); got != hl {
			t.Fatalf("header length %d, pion %d", got, hl)
		}
		if h.Extension && (h.ExtensionProfile == 0xc0de || h.ExtensionProfile == 0xc2de) {
			// RFC 9335 cryptex marks: pion refuses them unless cryptex is
			// negotiated, and no packet that reaches Protect carries them
			// (a publisher's would not have decrypted).
			return
		}
		p.dec.SetROC(binary.BigEndian.Uint32(data[8:12]), roc)
		back, err := p.dec.DecryptRTP(nil, buf[:n], nil)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("pion DecryptRTP: %v", err)
		}
	})
}
