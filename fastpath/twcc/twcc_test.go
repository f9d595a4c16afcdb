package twcc

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

const (
	ms = int64(time.Millisecond)
	us = int64(time.Microsecond)
)

func rtpWithExt(t testing.TB, profile uint16, exts map[uint8][]byte) []byte {
	t.Helper()
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, SSRC: 5, CSRC: []uint32{9}}
	if profile != 0 {
		h.Extension, h.ExtensionProfile = true, profile
	}
	for id := uint8(1); id < 255; id++ {
		if v, ok := exts[id]; ok {
			if err := h.SetExtension(id, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := rtp.Packet{Header: h, Payload: []byte{1, 2, 3}}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFindExtension(t *testing.T) {
	oneByte := rtpWithExt(t, 0xbede, map[uint8][]byte{1: {0xaa}, 3: {0x12, 0x34}, 14: {1, 2, 3, 4}})
	twoByte := rtpWithExt(t, 0x1000, map[uint8][]byte{5: {0x56, 0x78}, 200: make([]byte, 20)})
	padded := []byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0, 2, 0, 0, 0x21, 0xbe, 0xef, 0x00, 0, 0}
	stop := []byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0xf0, 0x31, 0xbe, 0xef}
	for _, tc := range []struct {
		name string
		pkt  []byte
		id   uint8
		want []byte
	}{
		{"one-byte first", oneByte, 1, []byte{0xaa}},
		{"one-byte middle", oneByte, 3, []byte{0x12, 0x34}},
		{"one-byte last", oneByte, 14, []byte{1, 2, 3, 4}},
		{"one-byte absent", oneByte, 2, nil},
		{"two-byte", twoByte, 5, []byte{0x56, 0x78}},
		{"two-byte big id", twoByte, 200, make([]byte, 20)},
		{"padding bytes skipped", padded, 2, []byte{0xbe, 0xef}},
		{"id 15 stops", stop, 3, nil},
		{"no extension", rtpWithExt(t, 0, nil), 1, nil},
		{"id 0", oneByte, 0, nil},
		{"truncated", oneByte[:18], 14, nil},
		{"not rtp", []byte{0, 1, 2}, 1, nil},
		{"length past end", []byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0xff, 0xff}, 1, nil},
		{"element past end", []byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FindExtension(tc.pkt, tc.id)
			if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
				t.Errorf("got %x %v want %x", got, ok, tc.want)
			}
		})
	}
	if s, ok := TransportSeq(oneByte, 3); !ok || s != 0x1234 {
		t.Errorf("TransportSeq = %x %v", s, ok)
	}
	if _, ok := TransportSeq(oneByte, 1); ok {
		t.Error("1-byte value taken as a transport seq")
	}
}

// decoded is a feedback as pion sees it: per transport seq, the arrival time
// in µs, or -1 for "not received".
func decode(t *testing.T, pkt []byte) (map[uint16]int64, *rtcp.TransportLayerCC) {
	t.Helper()
	var fb rtcp.TransportLayerCC
	if err := fb.Unmarshal(pkt); err != nil {
		t.Fatalf("pion rejects our feedback: %v\n%x", err, pkt)
	}
	var syms []uint16
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				syms = append(syms, c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			syms = append(syms, c.SymbolList...)
		}
	}
	if len(syms) < int(fb.PacketStatusCount) {
		t.Fatalf("%d symbols for %d statuses", len(syms), fb.PacketStatusCount)
	}
	out := map[uint16]int64{}
	at := int64(fb.ReferenceTime) * 64000
	d := 0
	for i := range int(fb.PacketStatusCount) {
		seq := fb.BaseSequenceNumber + uint16(i)
		if syms[i] == rtcp.TypeTCCPacketNotReceived {
			out[seq] = -1
			continue
		}
		at += fb.RecvDeltas[d].Delta
		d++
		out[seq] = at
	}
	if d != len(fb.RecvDeltas) {
		t.Fatalf("%d deltas for %d received", len(fb.RecvDeltas), d)
	}
	return out, &fb
}

// TestInteropRandom records random loss/reorder patterns, builds feedback
// in buffers of several sizes and checks that pion/rtcp parses every packet
// and reconstructs each received packet's arrival to the 250 µs tick.
type interopCase struct {
	name                string
	start               uint16
	lossPct, reorderPct int
	gapUS               int64 // mean inter-arrival
	dst                 int
}

func TestInteropRandom(t *testing.T) {
	for _, tc := range []interopCase{
		{"clean", 100, 0, 0, 1000, 1200},
		{"loss5", 200, 5, 0, 800, 1200},
		{"loss30 reorder10", 65000, 30, 10, 500, 1200},
		{"wrap small buffer", 65500, 5, 5, 2000, 64},
		{"bursty big gaps", 1, 20, 5, 40000, 1200},
		{"dense", 30000, 2, 2, 50, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			truth, reported := runInterop(t, tc)
			for s, at := range truth {
				want := at / (250 * us) * 250 // µs on the 250 µs grid
				if reported[s] != want {
					t.Fatalf("seq %d: reported %d µs want %d", s, reported[s], want)
				}
			}
			for s := range reported {
				if _, ok := truth[s]; !ok {
					t.Fatalf("seq %d reported but never arrived", s)
				}
			}
		})
	}
}

// runInterop simulates 40 feedback intervals of tc's pattern and returns
// the true arrival times (ns) and what pion decoded from our feedback (µs).
func runInterop(t *testing.T, tc interopCase) (truth, reported map[uint16]int64) {
	rng := rand.New(rand.NewPCG(uint64(tc.start), 7))
	var r Recorder
	truth, reported = map[uint16]int64{}, map[uint16]int64{}
	seq, now := tc.start, int64(time.Hour)
	var held []uint16
	dst := make([]byte, tc.dst)
	fbCount := uint8(0)
	for range 40 {
		for range 1 + rng.IntN(60) {
			now += rng.Int64N(2*tc.gapUS*us + 1)
			s := seq
			seq++
			switch {
			case rng.IntN(100) < tc.lossPct:
			case rng.IntN(100) < tc.reorderPct:
				held = append(held, s)
			default:
				r.Record(s, now)
				truth[s] = now
			}
		}
		for _, s := range held { // reordered: arrive late
			now += us
			r.Record(s, now)
			truth[s] = now
		}
		held = held[:0]
		for r.Pending() {
			n, ok := r.BuildFeedback(dst, 1, 0x1234, fbCount)
			if !ok || n%4 != 0 || n > len(dst) {
				t.Fatalf("BuildFeedback n=%d ok=%v", n, ok)
			}
			got, fb := decode(t, dst[:n])
			if fb.FbPktCount != fbCount || fb.MediaSSRC != 0x1234 {
				t.Fatalf("header %+v", fb)
			}
			fbCount++
			for s, at := range got {
				if at >= 0 {
					reported[s] = at
				} else if _, was := reported[s]; was {
					t.Fatalf("seq %d reported received, then lost", s)
				}
			}
		}
	}
	return truth, reported
}

// TestWraparound is Chrome's pattern: transport seq counts through 65535.
func TestWraparound(t *testing.T) {
	var r Recorder
	now := int64(time.Second)
	for s := 65530; s < 65540; s++ {
		r.Record(uint16(s), now)
		now += ms
	}
	dst := make([]byte, 200)
	n, ok := r.BuildFeedback(dst, 1, 2, 0)
	if !ok {
		t.Fatal("no feedback")
	}
	got, fb := decode(t, dst[:n])
	if fb.BaseSequenceNumber != 65530 || fb.PacketStatusCount != 10 || got[3] != got[65535]+4000 {
		t.Fatalf("feedback %v %v", fb, got)
	}
	// the next feedback continues after the wrap
	r.Record(10, now)
	n, _ = r.BuildFeedback(dst, 1, 2, 1)
	if _, fb = decode(t, dst[:n]); fb.BaseSequenceNumber != 4 || fb.PacketStatusCount != 7 {
		t.Fatalf("second feedback base %d count %d", fb.BaseSequenceNumber, fb.PacketStatusCount)
	}
	if r.Pending() {
		t.Error("still pending")
	}
	if _, ok := r.BuildFeedback(dst, 1, 2, 2); ok {
		t.Error("feedback without news")
	}
}

func TestChunkEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		syms []uint8
		want []uint16
	}{
		{"run", []uint8{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []uint16{0x2000 | 15}},
		{"run to end", []uint8{1, 1}, []uint16{0x2000 | 2}},
		{"one-bit vector", []uint8{1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []uint16{0x8000 | 0x2bff, 0x2000 | 1}},
		{"two-bit vector", []uint8{2, 0, 1, 1}, []uint16{0xc000 | 2<<12 | 0<<10 | 1<<8 | 1<<6}},
		{"large run", []uint8{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, []uint16{0x4000 | 14}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Recorder
			copy(r.syms[:], tc.syms)
			buf := make([]byte, 64)
			n := r.writeChunks(buf, len(tc.syms))
			var got []uint16
			for i := 0; i < n; i += 2 {
				got = append(got, uint16(buf[i])<<8|uint16(buf[i+1]))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %04x want %04x", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %04x want %04x", got, tc.want)
				}
			}
		})
	}
}

func TestRecorderEdges(t *testing.T) {
	var r Recorder
	r.Record(100, ms)
	r.Record(100, 2*ms) // duplicate
	r.Record(100+RingSize+5, 3*ms)
	r.Record(101, 4*ms) // older than the ring now holds
	if r.Stats.Duplicates != 1 || r.Stats.TooOld != 1 {
		t.Fatalf("stats %+v", r.Stats)
	}
	dst := make([]byte, 1500)
	total := 0
	for r.Pending() {
		n, ok := r.BuildFeedback(dst, 1, 2, 0)
		if !ok {
			t.Fatal("pending but no feedback")
		}
		_, fb := decode(t, dst[:n])
		total += int(fb.PacketStatusCount)
	}
	if total != RingSize {
		t.Errorf("reported %d statuses, want the ring's %d", total, RingSize)
	}
	// A gap of more than 8 s cannot be a delta: it splits the feedback.
	var g Recorder
	g.Record(1, ms)
	g.Record(2, 10*time.Second.Nanoseconds())
	n1, _ := g.BuildFeedback(dst, 1, 2, 0)
	_, fb := decode(t, dst[:n1])
	n2, ok := g.BuildFeedback(dst, 1, 2, 1)
	if fb.PacketStatusCount != 1 || !ok || n2 == 0 || g.Pending() {
		t.Errorf("split failed: %v %d", fb, n2)
	}
	if _, ok := g.BuildFeedback(dst[:10], 1, 2, 0); ok {
		t.Error("tiny dst accepted")
	}
}
