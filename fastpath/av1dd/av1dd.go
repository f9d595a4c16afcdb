// Package av1dd parses the AV1 RTP Dependency Descriptor header extension
// (https://aomediacodec.github.io/av1-rtp-spec/ appendix A, extension URI
// URI): each packet's frame boundaries, frame number and template, and,
// from the template dependency structure a sender attaches to key frames,
// the temporal and spatial layer of the template. The fastpath uses it to
// drop an AV1 L1T2/L1T3 stream's temporal layers per player.
//
// It may be imported by fastpath, its sub-packages and tests; it imports
// only the standard library. A Structure belongs to one RTP stream and one
// goroutine (the publisher's owner core); Parse allocates nothing.
package av1dd

import "errors"

// URI is the extension's SDP extmap URI.
const URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"

// MaxTemplates bounds a structure's templates (A.4: template ids are 6 bits).
const MaxTemplates = 64

// Errors of Parse; none allocates.
var (
	ErrShort       = errors.New("av1dd: descriptor shorter than its fields")
	ErrNoStructure = errors.New("av1dd: no template dependency structure yet")
	ErrTemplate    = errors.New("av1dd: template id outside the structure")
	ErrStructure   = errors.New("av1dd: malformed template dependency structure")
)

// Structure is the part of a template dependency structure (A.8.3) that
// later descriptors of the stream refer to. The zero value is "none yet".
type Structure struct {
	valid     bool
	offset    uint8 // template_id_offset
	templates uint8 // TemplateCnt
	dts       uint8 // DtCnt
	chains    uint8 // chain_cnt
	tid       [MaxTemplates]uint8
	sid       [MaxTemplates]uint8
}

// Valid reports whether a structure has been received.
func (s *Structure) Valid() bool { return s.valid }

// MaxTemporal is the highest temporal id of the structure's templates.
func (s *Structure) MaxTemporal() uint8 {
	m := uint8(0)
	for i := range s.templates {
		m = max(m, s.tid[i])
	}
	return m
}

// Descriptor is what one packet's dependency descriptor says.
type Descriptor struct {
	StartOfFrame, EndOfFrame bool
	TemplateID               uint8
	FrameNumber              uint16
	// Temporal and Spatial are the frame's layer ids, from its template.
	Temporal, Spatial uint8
	// HasStructure reports that the descriptor carried a template
	// dependency structure (a key frame's), which Parse stored.
	HasStructure bool
}

// Parse reads the dependency descriptor b, the extension element's data
// (A.8.1), into d, resolving its template against s; a descriptor that
// carries a structure replaces s first, and only when the whole
// descriptor is well-formed.
func Parse(b []byte, s *Structure, d *Descriptor) error {
	if len(b) < 3 {
		return ErrShort
	}
	r := reader{b: b}
	*d = Descriptor{
		StartOfFrame: r.f(1) == 1,
		EndOfFrame:   r.f(1) == 1,
		TemplateID:   uint8(r.f(6)),
		FrameNumber:  uint16(r.f(16)),
	}
	var flags uint32 // structure, active targets, custom dtis, fdiffs, chains
	if len(b) > 3 {
		flags = r.f(5)
	}
	cur := s
	var ns Structure
	if flags&0x10 != 0 {
		if !ns.read(&r) {
			return ErrStructure
		}
		cur, d.HasStructure = &ns, true
	}
	if !cur.valid {
		return ErrNoStructure
	}
	if flags&0x08 != 0 {
		r.f(int(cur.dts)) // active_decode_targets_bitmask
	}
	t := (d.TemplateID + MaxTemplates - cur.offset) % MaxTemplates
	if t >= cur.templates {
		return ErrTemplate
	}
	d.Temporal, d.Spatial = cur.tid[t], cur.sid[t]
	if flags&0x04 != 0 {
		r.f(2 * int(cur.dts)) // frame_dtis: at most 64 bits, read in two
	}
	if flags&0x02 != 0 {
		r.fdiffs()
	}
	if flags&0x01 != 0 {
		for range cur.chains {
			r.f(8) // frame_chain_fdiff
		}
	}
	if r.over {
		return ErrShort
	}
	if d.HasStructure {
		*s = ns
	}
	return nil
}

// read parses template_dependency_structure (A.8.3) into s.
func (s *Structure) read(r *reader) bool {
	s.offset = uint8(r.f(6))
	s.dts = uint8(r.f(5)) + 1
	// template_layers
	var tid, sid uint8
	for {
		if s.templates == MaxTemplates || r.over {
			return false
		}
		s.tid[s.templates], s.sid[s.templates] = tid, sid
		s.templates++
		idc := r.f(2)
		if idc == 3 {
			break
		}
		switch idc {
		case 1:
			tid++
		case 2:
			tid, sid = 0, sid+1
		}
	}
	r.f(2 * int(s.dts) * int(s.templates)) // template_dtis
	for range s.templates {                // template_fdiffs
		for r.f(1) == 1 && !r.over {
			r.f(4)
		}
	}
	s.chains = uint8(r.ns(uint32(s.dts) + 1)) // template_chains
	if s.chains != 0 {
		for range s.dts {
			r.ns(uint32(s.chains)) // decode_target_protected_by
		}
		r.f(4 * int(s.chains) * int(s.templates))
	}
	if r.f(1) == 1 { // resolutions_present_flag: render_resolutions
		r.f(32 * (int(sid) + 1))
	}
	s.valid = !r.over
	return s.valid
}

// reader reads the descriptor's bits, MSB first; past the end it returns
// zeros and sets over.
type reader struct {
	b    []byte
	pos  int // in bits
	over bool
}

// f reads n bits (A.2 f(n)); n may exceed 32, when only the last 32 count.
func (r *reader) f(n int) uint32 {
	if n <= 0 {
		return 0
	}
	if r.pos+n > 8*len(r.b) {
		r.pos, r.over = 8*len(r.b), true
		return 0
	}
	var v uint32
	for range n {
		v = v<<1 | uint32(r.b[r.pos>>3]>>(7-r.pos&7))&1
		r.pos++
	}
	return v
}

// ns reads a non-symmetric unsigned value below n (A.2 ns(n)).
func (r *reader) ns(n uint32) uint32 {
	w := 0
	for x := n; x != 0; x >>= 1 {
		w++
	}
	m := uint32(1)<<w - n
	v := r.f(w - 1)
	if v < m {
		return v
	}
	return v<<1 - m + r.f(1)
}

// fdiffs skips frame_fdiffs (A.8.2).
func (r *reader) fdiffs() {
	for !r.over {
		size := r.f(2) // next_fdiff_size
		if size == 0 {
			return
		}
		r.f(4 * int(size))
	}
}
