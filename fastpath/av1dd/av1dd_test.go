package av1dd

import (
	"errors"
	"testing"
)

// writer is an independent bit writer for building descriptors (A.2).
type writer struct {
	b   []byte
	pos int
}

func (w *writer) f(n int, v uint64) {
	for i := n - 1; i >= 0; i-- {
		if w.pos%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[w.pos/8] |= 0x80 >> uint(w.pos%8)
		}
		w.pos++
	}
}

// ns writes v < n in the non-symmetric encoding.
func (w *writer) ns(n, v uint64) {
	bits := 0
	for x := n; x != 0; x >>= 1 {
		bits++
	}
	m := uint64(1)<<bits - n
	if v < m {
		w.f(bits-1, v)
		return
	}
	w.f(bits, v+m) // (v+m)>>1 in bits-1 bits, then the extra bit
}

// l1t3 is libwebrtc's ScalabilityStructureL1T3 (templates T0 key, T0, T1,
// T2, T2; three decode targets; one chain), as the structure it attaches.
type tmpl struct {
	tid    int
	dtis   [3]uint64
	fdiffs []uint64
	chain  uint64
}

var l1t3 = []tmpl{
	{0, [3]uint64{2, 2, 2}, nil, 0},
	{0, [3]uint64{2, 2, 2}, []uint64{4}, 4},
	{1, [3]uint64{0, 3, 2}, []uint64{2}, 2},
	{2, [3]uint64{0, 0, 3}, []uint64{1}, 1},
	{2, [3]uint64{0, 0, 3}, []uint64{1}, 3},
}

// descriptor builds a descriptor of template id tmplID; with structure it
// attaches l1t3 (template_id_offset off) and a 640x480 resolution.
func descriptor(start, end bool, tmplID, frame uint64, structure bool, off uint64) []byte {
	w := &writer{}
	w.f(1, b2u(start))
	w.f(1, b2u(end))
	w.f(6, tmplID)
	w.f(16, frame)
	if !structure {
		return w.b
	}
	w.f(5, 0x10)
	w.f(6, off)
	w.f(5, 2) // DtCnt 3
	for i, t := range l1t3 {
		switch {
		case i == len(l1t3)-1:
			w.f(2, 3)
		case l1t3[i+1].tid > t.tid:
			w.f(2, 1)
		default:
			w.f(2, 0)
		}
	}
	for _, t := range l1t3 {
		for _, d := range t.dtis {
			w.f(2, d)
		}
	}
	for _, t := range l1t3 {
		for _, fd := range t.fdiffs {
			w.f(1, 1)
			w.f(4, fd-1)
		}
		w.f(1, 0)
	}
	w.ns(4, 1) // chain_cnt 1
	for range 3 {
		w.ns(1, 0)
	}
	for _, t := range l1t3 {
		w.f(4, t.chain)
	}
	w.f(1, 1)
	w.f(16, 639)
	w.f(16, 479)
	return w.b
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestParseL1T3(t *testing.T) {
	var s Structure
	var d Descriptor
	if err := Parse(descriptor(true, false, 1, 7, false, 0), &s, &d); !errors.Is(err, ErrNoStructure) {
		t.Fatalf("before a structure: %v", err)
	}
	key := descriptor(true, true, 10, 100, true, 10)
	if err := Parse(key, &s, &d); err != nil {
		t.Fatalf("key frame: %v", err)
	}
	if !d.HasStructure || !d.StartOfFrame || !d.EndOfFrame || d.FrameNumber != 100 || d.Temporal != 0 || !s.Valid() {
		t.Fatalf("key frame: %+v", d)
	}
	if s.MaxTemporal() != 2 || s.templates != 5 || s.dts != 3 || s.chains != 1 {
		t.Fatalf("structure %+v", s)
	}
	for id, want := range map[uint64]uint8{10: 0, 11: 0, 12: 1, 13: 2, 14: 2} {
		if err := Parse(descriptor(false, true, id, 101, false, 0), &s, &d); err != nil || d.Temporal != want {
			t.Errorf("template %d: tid %d err %v, want %d", id, d.Temporal, err, want)
		}
	}
	if err := Parse(descriptor(true, false, 15, 1, false, 0), &s, &d); !errors.Is(err, ErrTemplate) {
		t.Errorf("template 15 of 10…14: %v", err)
	}
	if err := Parse(descriptor(true, false, 9, 1, false, 0), &s, &d); !errors.Is(err, ErrTemplate) {
		t.Errorf("template 9 of 10…14: %v", err)
	}
	// Custom dtis, fdiffs and chains on a T1 frame; padding after them.
	w := &writer{b: descriptor(true, true, 12, 5, false, 0)}
	w.pos = 24
	w.f(5, 0x07)
	w.f(6, 0x1b) // dtis
	w.f(2, 2)    // fdiff of 8 bits
	w.f(8, 200)  //
	w.f(2, 0)    // end
	w.f(8, 3)    // chain
	w.f(8, 0)    // padding
	if err := Parse(w.b, &s, &d); err != nil || d.Temporal != 1 || d.FrameNumber != 5 {
		t.Errorf("custom fields: %+v %v", d, err)
	}
	if err := Parse(w.b[:5], &s, &d); !errors.Is(err, ErrShort) {
		t.Errorf("truncated custom fields: %v", err)
	}
}

// TestParseTruncated: every prefix of a structure-carrying descriptor is
// rejected without replacing the stored structure (offset 0 in it).
func TestParseTruncated(t *testing.T) {
	var s Structure
	var d Descriptor
	if err := Parse(descriptor(true, true, 0, 1, true, 0), &s, &d); err != nil {
		t.Fatal(err)
	}
	full := descriptor(true, true, 40, 2, true, 40)
	for n := 4; n < len(full); n++ {
		if err := Parse(full[:n], &s, &d); err == nil {
			t.Fatalf("prefix of %d of %d bytes parsed: %+v", n, len(full), d)
		}
		if s.offset != 0 {
			t.Fatalf("prefix of %d bytes replaced the structure", n)
		}
	}
	if err := Parse(full[:3], &s, &d); !errors.Is(err, ErrTemplate) {
		t.Fatalf("its mandatory fields alone, template 40 of 0…4: %v", err)
	}
	if err := Parse(descriptor(false, true, 2, 3, false, 0), &s, &d); err != nil || d.Temporal != 1 {
		t.Fatalf("mandatory fields alone: tid %d, %v", d.Temporal, err)
	}
}

func TestParseAllocs(t *testing.T) {
	var s Structure
	var d Descriptor
	key := descriptor(true, true, 0, 1, true, 0)
	delta := descriptor(true, true, 3, 2, false, 0)
	if n := testing.AllocsPerRun(100, func() {
		_ = Parse(key, &s, &d)
		_ = Parse(delta, &s, &d)
		_ = Parse(delta[:2], &s, &d)
	}); n != 0 {
		t.Fatalf("Parse allocates %.1f per run", n)
	}
}

// FuzzDependencyDescriptor: Parse never panics, never stores a structure
// from a descriptor it rejects, and resolves a template only inside the
// structure.
func FuzzDependencyDescriptor(f *testing.F) {
	f.Add(descriptor(true, true, 0, 1, true, 0), descriptor(false, true, 3, 2, false, 0))
	f.Add(descriptor(true, false, 60, 9, true, 60), descriptor(true, true, 0, 10, false, 0))
	f.Add([]byte{0xc0, 0, 1, 0xff}, []byte{0x80, 0, 2})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var s Structure
		var d Descriptor
		errA := Parse(a, &s, &d)
		if errA != nil && s.Valid() {
			t.Fatalf("rejected descriptor left a structure: %v", errA)
		}
		before := s
		if err := Parse(b, &s, &d); err == nil {
			if !s.Valid() || d.Temporal > s.MaxTemporal() {
				t.Fatalf("accepted %x without a usable structure: %+v", b, d)
			}
		} else if s != before {
			t.Fatalf("rejected %x replaced the structure: %v", b, err)
		}
	})
}

// chromiumKey is the first packet's descriptor of a key frame Chromium 156
// sent for scalabilityMode L1T3 (libaom, 640x480; TestSVCChromiumAV1).
var chromiumKey = []byte{0x80, 0x00, 0x01, 0x80, 0x02, 0x14, 0xea, 0xa8, 0x60, 0x41, 0x4d, 0x14, 0x10, 0x20, 0x84, 0x27, 0x02, 0x7f, 0x01, 0xdf}

// TestParseChromium: Chromium's L1T3 structure is libwebrtc's: templates
// of temporal ids 0, 0, 1, 2, 2, three decode targets, one chain.
func TestParseChromium(t *testing.T) {
	var s Structure
	var d Descriptor
	if err := Parse(chromiumKey, &s, &d); err != nil {
		t.Fatal(err)
	}
	if !d.HasStructure || !d.StartOfFrame || d.EndOfFrame || d.FrameNumber != 1 || d.Temporal != 0 {
		t.Fatalf("descriptor %+v", d)
	}
	if s.templates != 5 || s.dts != 3 || s.chains != 1 || s.offset != 0 {
		t.Fatalf("structure: %d templates, %d decode targets, %d chains, offset %d", s.templates, s.dts, s.chains, s.offset)
	}
	if want := [5]uint8{0, 0, 1, 2, 2}; [5]uint8(s.tid[:5]) != want {
		t.Fatalf("temporal ids %v, want %v", s.tid[:5], want)
	}
}
