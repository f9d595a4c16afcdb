package gop

import (
	"encoding/binary"
	"testing"

	"github.com/fanout/fanout/fastpath/route"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   route.Codec
		payload []byte
		want    Kind
	}{
		{"h264 idr", route.CodecH264, []byte{0x65, 0x88}, Keyframe},
		{"h264 sps", route.CodecH264, []byte{0x67, 0x42}, ParamSet},
		{"h264 pps", route.CodecH264, []byte{0x68, 0xce}, Other},
		{"h264 non-idr", route.CodecH264, []byte{0x41, 0x9a}, Other},
		{"h264 stap-a sps pps", route.CodecH264, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, ParamSet},
		{"h264 stap-a sps pps idr", route.CodecH264, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}, Keyframe},
		{"h264 stap-a truncated", route.CodecH264, []byte{0x78, 0, 9, 0x65}, Other},
		{"h264 stap-b", route.CodecH264, []byte{0x79, 0, 1, 0, 2, 0x65, 0x88}, Keyframe},
		{"h264 fu-a idr start", route.CodecH264, []byte{0x7c, 0x85, 1}, Keyframe},
		{"h264 fu-a idr middle", route.CodecH264, []byte{0x7c, 0x05, 1}, Other},
		{"h264 fu-a non-idr start", route.CodecH264, []byte{0x7c, 0x81, 1}, Other},
		{"h264 fu-a truncated", route.CodecH264, []byte{0x7c}, Other},
		{"h265 idr_w_radl", route.CodecH265, []byte{19 << 1, 1}, Keyframe},
		{"h265 cra", route.CodecH265, []byte{21 << 1, 1}, Keyframe},
		{"h265 bla", route.CodecH265, []byte{16 << 1, 1}, Keyframe},
		{"h265 trail", route.CodecH265, []byte{1 << 1, 1}, Other},
		{"h265 vps", route.CodecH265, []byte{32 << 1, 1}, ParamSet},
		{"h265 pps", route.CodecH265, []byte{34 << 1, 1}, Other},
		{"h265 ap vps sps pps", route.CodecH265, []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 2, 33 << 1, 1, 0, 2, 34 << 1, 1}, ParamSet},
		{"h265 ap with idr", route.CodecH265, []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 3, 19 << 1, 1, 9}, Keyframe},
		{"h265 fu idr start", route.CodecH265, []byte{49 << 1, 1, 0x80 | 19, 9}, Keyframe},
		{"h265 fu idr middle", route.CodecH265, []byte{49 << 1, 1, 19, 9}, Other},
		{"h265 short", route.CodecH265, []byte{19 << 1}, Other},
		{"vp8 key, no ext", route.CodecVP8, []byte{0x10, 0x00}, Keyframe},
		{"vp8 inter", route.CodecVP8, []byte{0x10, 0x01}, Other},
		{"vp8 key, not partition start", route.CodecVP8, []byte{0x00, 0x00}, Other},
		{"vp8 key, partition 1", route.CodecVP8, []byte{0x11, 0x00}, Other},
		{"vp8 key, 15-bit picture id", route.CodecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, Keyframe},
		{"vp8 inter, 7-bit id + tl0 + tid", route.CodecVP8, []byte{0x90, 0xe0, 0x12, 0x05, 0x40, 0x01}, Other},
		{"vp8 key, 7-bit id + tl0 + tid", route.CodecVP8, []byte{0x90, 0xe0, 0x12, 0x05, 0x40, 0x00}, Keyframe},
		{"vp8 truncated", route.CodecVP8, []byte{0x90, 0x80, 0x81}, Other},
		{"vp9 key", route.CodecVP9, []byte{0x08 | 0x04, 0x00}, Keyframe},
		{"vp9 inter", route.CodecVP9, []byte{0x40 | 0x08, 0x00}, Other},
		{"vp9 key, not frame start", route.CodecVP9, []byte{0x04, 0x00}, Other},
		{"vp9 key with picture id", route.CodecVP9, []byte{0x80 | 0x08, 0x81, 0x23}, Keyframe},
		{"vp9 key, spatial layer 1", route.CodecVP9, []byte{0x20 | 0x08, 0x02, 0}, Other},
		{"vp9 key, spatial layer 0", route.CodecVP9, []byte{0x80 | 0x20 | 0x08, 0x05, 0x00, 0}, Keyframe},
		{"vp9 truncated layer", route.CodecVP9, []byte{0x80 | 0x20 | 0x08, 0x05}, Other},
		{"av1 new sequence", route.CodecAV1, []byte{0x18, 0x0a}, Keyframe},
		{"av1 continuation", route.CodecAV1, []byte{0x90, 0x0a}, Other},
		{"empty", route.CodecH264, nil, Other},
		{"unknown codec", route.Codec(99), []byte{0xff}, Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.codec, tc.payload); got != tc.want {
				t.Errorf("got %d want %d", got, tc.want)
			}
		})
	}
}

// pkt makes an RTP packet with an H.264 payload.
func pkt(seq uint16, ts uint32, payload ...byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0], b[1] = 0x80, 96
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	return append(b, payload...)
}

var (
	sps   = []byte{0x67, 0x42, 1}
	idrFU = []byte{0x7c, 0x85, 1}
	idrMU = []byte{0x7c, 0x05, 2}
	pSlc  = []byte{0x41, 0x9a, 3}
)

func seqsOf(c *Cache) []uint16 {
	var s []uint16
	c.Replay(func(p []byte) { s = append(s, binary.BigEndian.Uint16(p[2:])) })
	return s
}

func TestCache(t *testing.T) {
	type push struct {
		seq uint16
		ts  uint32
		pl  []byte
	}
	for _, tc := range []struct {
		name      string
		pushes    []push
		maxPkts   int
		want      []uint16 // nil: not ready
		overflows uint64
	}{
		{"nothing before a keyframe", []push{{1, 0, pSlc}, {2, 3000, pSlc}}, 16, nil, 0},
		{"sps then idr then p", []push{{1, 0, pSlc}, {2, 3000, sps}, {3, 3000, idrFU}, {4, 3000, idrMU}, {5, 6000, pSlc}}, 16, []uint16{2, 3, 4, 5}, 0},
		{"sps alone is not ready", []push{{2, 3000, sps}, {3, 6000, pSlc}}, 16, nil, 0},
		{"second keyframe restarts", []push{{1, 0, idrFU}, {2, 3000, pSlc}, {3, 6000, idrFU}, {4, 9000, pSlc}}, 16, []uint16{3, 4}, 0},
		{"fragment before its start is kept", []push{{1, 0, idrFU}, {2, 3000, pSlc}, {5, 6000, idrMU}, {4, 6000, idrFU}, {6, 9000, pSlc}}, 16, []uint16{5, 4, 6}, 0},
		{"stale packet from the old gop dropped", []push{{10, 6000, idrFU}, {8, 3000, pSlc}, {11, 9000, pSlc}}, 16, []uint16{10, 11}, 0},
		{"overflow stops caching", []push{{1, 0, idrFU}, {2, 0, idrMU}, {3, 3000, pSlc}, {4, 6000, pSlc}}, 3, nil, 1},
		{"next keyframe after overflow", []push{{1, 0, idrFU}, {2, 3000, pSlc}, {3, 6000, pSlc}, {4, 9000, pSlc}, {5, 12000, idrFU}}, 3, []uint16{5}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(route.CodecH264, tc.maxPkts, 1<<16)
			for _, p := range tc.pushes {
				c.Push(pkt(p.seq, p.ts, p.pl...), 0)
			}
			got := seqsOf(c)
			if c.Ready() != (tc.want != nil) || len(got) != len(tc.want) || c.Stats.Overflows != tc.overflows {
				t.Fatalf("ready %v got %v want %v stats %+v", c.Ready(), got, tc.want, c.Stats)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v want %v", got, tc.want)
				}
			}
		})
	}
}

func TestCacheBytesBoundAndReset(t *testing.T) {
	c := NewCache(route.CodecH264, 100, 64)
	c.Push(pkt(1, 0, idrFU...), 0)
	big := make([]byte, 60)
	big[0] = 0x41
	c.Push(pkt(2, 3000, big...), 0)
	if c.Ready() || c.Stats.Overflows != 1 {
		t.Fatalf("byte bound not enforced: %+v", c.Stats)
	}
	c.Push(pkt(3, 6000, idrFU...), 0)
	if n, b := c.Len(); !c.Ready() || n != 1 || b != 15 {
		t.Fatalf("len %d %d", n, b)
	}
	c.Reset()
	if c.Ready() || c.Replay(func([]byte) {}) != 0 {
		t.Fatal("Reset kept the GOP")
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x65}, {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x65, 9}} {
		if c.Push(bad, 0) != Other {
			t.Errorf("garbage %x classified", bad)
		}
	}
}

func TestZeroAlloc(t *testing.T) {
	c := NewCache(route.CodecH264, DefaultMaxPackets, DefaultMaxBytes)
	key, p := pkt(1, 0, idrFU...), pkt(2, 3000, make([]byte, 1100)...)
	p[12] = 0x41
	ts := uint32(0)
	n := 0
	cases := map[string]func(){
		"Push": func() {
			ts += 3000
			binary.BigEndian.PutUint32(p[4:], ts)
			c.Push(p, 0)
			if ts%(3000*300) == 0 {
				c.Push(key, 0)
			}
		},
		"Push keyframe": func() { ts += 3000; binary.BigEndian.PutUint32(key[4:], ts); c.Push(key, 0) },
		"Classify":      func() { Classify(route.CodecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}) },
		"Replay":        func() { c.Replay(func(b []byte) { n += len(b) }) },
	}
	for name, f := range cases {
		f()
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

func BenchmarkPush(b *testing.B) {
	c := NewCache(route.CodecH264, DefaultMaxPackets, DefaultMaxBytes)
	p := pkt(1, 0, make([]byte, 1100)...)
	p[12] = 0x41
	key := pkt(0, 0, idrFU...)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for i := 0; b.Loop(); i++ {
		if i%500 == 0 { // a keyframe every 500 packets
			binary.BigEndian.PutUint32(key[4:], uint32(i))
			c.Push(key, 0)
		}
		binary.BigEndian.PutUint16(p[2:], uint16(i))
		c.Push(p, 0)
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, tc := range []struct {
		name  string
		codec route.Codec
		pl    []byte
	}{
		{"codec=h264", route.CodecH264, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}},
		{"codec=vp8", route.CodecVP8, []byte{0x90, 0xe0, 0x12, 0x05, 0x40, 0x00}},
		{"codec=vp9", route.CodecVP9, []byte{0x80 | 0x20 | 0x08, 0x05, 0x00, 0}},
		{"codec=h265", route.CodecH265, []byte{49 << 1, 1, 0x80 | 19, 9}},
		{"codec=av1", route.CodecAV1, []byte{0x18}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Classify(tc.codec, tc.pl)
			}
		})
	}
}

func BenchmarkReplay(b *testing.B) {
	c := NewCache(route.CodecH264, DefaultMaxPackets, DefaultMaxBytes)
	c.Push(pkt(0, 0, idrFU...), 0)
	for i := 1; i < 300; i++ {
		c.Push(pkt(uint16(i), 3000, make([]byte, 1100)...), 0)
	}
	b.ReportAllocs()
	sum := 0
	for b.Loop() {
		c.Replay(func(p []byte) { sum += len(p) })
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(uint8(route.CodecH264), []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce})
	f.Add(uint8(route.CodecH265), []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 3, 19 << 1, 1, 9})
	f.Add(uint8(route.CodecVP8), []byte{0x90, 0xe0, 0x12, 0x05, 0x40, 0x00})
	f.Add(uint8(route.CodecVP9), []byte{0x80 | 0x20 | 0x08, 0x05, 0x00, 0})
	f.Add(uint8(route.CodecAV1), []byte{0x18})
	c := NewCache(route.CodecH264, 64, 1<<14)
	f.Fuzz(func(t *testing.T, codec uint8, payload []byte) {
		Classify(route.Codec(codec%6), payload)
		c.Push(payload, 0) // as a whole "RTP packet"
		c.Replay(func([]byte) {})
	})
}

// TestCacheAge: Age runs from the Push that started the cached keyframe,
// not from the latest packet, and a new keyframe resets it.
func TestCacheAge(t *testing.T) {
	c := NewCache(route.CodecH264, 16, 1<<16)
	c.Push(pkt(1, 0, idrFU...), 100)
	c.Push(pkt(2, 3000, pSlc...), 500)
	if got := c.Age(1000); got != 900 {
		t.Fatalf("Age = %d, want 900", got)
	}
	c.Push(pkt(3, 6000, idrFU...), 2000)
	if got := c.Age(2500); got != 500 {
		t.Fatalf("Age after a new keyframe = %d, want 500", got)
	}
}
