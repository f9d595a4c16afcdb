package rtph264

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

var (
	sps = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}
	pps = []byte{0x68, 0xce, 0x3c, 0x80}
)

// slice builds a slice NAL unit of n bytes: first_mb 0 (ue "1") and the
// given slice_type as ue(v) for types 0..6.
func slice(typ byte, sliceType int, n int) []byte {
	// ue(v) codes: 0:1 1:010 2:011 3:00100 4:00101 5:00110 6:00111
	codes := []string{"1", "010", "011", "00100", "00101", "00110", "00111"}
	bitsStr := "1" + codes[sliceType] + "1"
	var b byte
	for i := 0; i < 8; i++ {
		b <<= 1
		if i < len(bitsStr) && bitsStr[i] == '1' {
			b |= 1
		}
	}
	out := make([]byte, n)
	out[0], out[1] = 0x60|typ, b
	for i := 2; i < n; i++ {
		out[i] = byte(i*7 + 1)
	}
	return out
}

func header(pkt []byte) (seq uint16, ts uint32, marker bool, payload []byte) {
	return binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint32(pkt[4:]), pkt[1]&0x80 != 0, pkt[12:]
}

func TestPacketizeSRSRules(t *testing.T) {
	p := NewPacketizer(102, 42, 1000)
	idr := slice(5, 2, 3000) // I slice, FU-A in 3 fragments
	pkts := p.Packetize(nil, [][]byte{sps, pps, idr}, 9000)
	if len(pkts) != 1+3 {
		t.Fatalf("%d packets, want STAP-A + 3 FU-A", len(pkts))
	}
	if _, _, m, pl := header(pkts[0]); pl[0]&0x1F != naluSTAPA || m {
		t.Fatalf("first packet type %d marker %v, want STAP-A without marker", pl[0]&0x1F, m)
	}
	for i, pkt := range pkts[1:] {
		seq, ts, m, pl := header(pkt)
		if pl[0]&0x1F != naluFUA || len(pl) > MaxPayload+2 || ts != 9000 || seq != uint16(1001+i) {
			t.Fatalf("fragment %d: type %d len %d ts %d seq %d", i, pl[0]&0x1F, len(pl), ts, seq)
		}
		if m != (i == 2) {
			t.Fatalf("fragment %d: marker %v", i, m)
		}
	}
	small := slice(1, 0, 500) // P slice, single NAL unit
	pkts = p.Packetize(nil, [][]byte{small}, 12600)
	if _, _, m, pl := header(pkts[0]); len(pkts) != 1 || !m || !bytes.Equal(pl, small) {
		t.Fatalf("small P: %d packets", len(pkts))
	}
}

func TestBFramesDroppedUnlessKept(t *testing.T) {
	b := slice(1, 1, 100)
	if !IsBFrame([][]byte{b}) || IsBFrame([][]byte{slice(1, 0, 100)}) || IsBFrame([][]byte{slice(5, 7-5, 100)}) {
		t.Fatal("IsBFrame misclassifies")
	}
	if !IsBFrame([][]byte{slice(1, 6, 100)}) {
		t.Fatal("slice_type 6 is B")
	}
	p := NewPacketizer(102, 1, 0)
	if n := len(p.Packetize(nil, [][]byte{b}, 0)); n != 0 {
		t.Fatalf("B-frame sent as %d packets", n)
	}
	p.KeepBframe = true
	if n := len(p.Packetize(nil, [][]byte{b}, 0)); n != 1 {
		t.Fatalf("kept B-frame sent as %d packets", n)
	}
}

func feed(t *testing.T, d *Depacketizer, pkts [][]byte) ([]*Frame, int) {
	t.Helper()
	var frames []*Frame
	losses := 0
	for _, pkt := range pkts {
		seq, ts, m, pl := header(pkt)
		f, err := d.Push(seq, ts, m, pl)
		if errors.Is(err, ErrLoss) {
			losses++
		} else if err != nil {
			t.Fatalf("push: %v", err)
		}
		if f != nil {
			frames = append(frames, f)
		}
	}
	return frames, losses
}

func TestRoundTripAndLoss(t *testing.T) {
	p := NewPacketizer(102, 1, 65530) // wraps the sequence number
	var pkts [][]byte
	idr, p1, p2 := slice(5, 2, 2500), slice(1, 0, 1500), slice(1, 0, 300)
	pkts = p.Packetize(pkts, [][]byte{sps, pps, idr}, 0)
	pkts = p.Packetize(pkts, [][]byte{p1}, 3600)
	pkts = p.Packetize(pkts, [][]byte{p2}, 7200)
	frames, losses := feed(t, NewDepacketizer(), pkts)
	if losses != 0 || len(frames) != 3 {
		t.Fatalf("%d frames, %d losses", len(frames), losses)
	}
	if !frames[0].Key || !bytes.Equal(frames[0].NALUs[0], sps) || !bytes.Equal(frames[0].NALUs[2], idr) {
		t.Fatal("key frame not rebuilt with SPS/PPS")
	}
	if !bytes.Equal(frames[1].NALUs[0], p1) || frames[2].TS != 7200 {
		t.Fatal("P frames not rebuilt")
	}
	// Lose the middle fragment of the P frame: it and the next P are
	// dropped until the next IDR.
	lossy := append(append([][]byte{}, pkts[:5]...), pkts[6:]...)
	lossy = p.Packetize(lossy, [][]byte{sps, pps, idr}, 10800)
	frames, losses = feed(t, NewDepacketizer(), lossy)
	if losses != 1 || len(frames) != 2 || !frames[1].Key || frames[1].TS != 10800 {
		t.Fatalf("after loss: %d frames, %d losses", len(frames), losses)
	}
}
