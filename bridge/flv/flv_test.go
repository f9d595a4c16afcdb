package flv

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/fanout/fanout/bridge/hub"
)

var (
	sps = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9}
	pps = []byte{0x68, 0xeb, 0xe3, 0xcb}
	asc = []byte{0x12, 0x10}
)

func TestUnitWriterReadBack(t *testing.T) {
	tr := hub.Tracks{Video: hub.CodecH264, Audio: hub.CodecAAC, AudioConfig: asc}
	w := NewUnitWriter(tr)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	units := []*hub.Unit{
		{Codec: hub.CodecAAC, PTS: ms(980), DTS: ms(980), Frame: []byte{9}},            // before key: skipped
		{Codec: hub.CodecH264, PTS: ms(960), DTS: ms(960), NALUs: [][]byte{{0x41, 1}}}, // before key: skipped
		{Codec: hub.CodecH264, PTS: ms(1080), DTS: ms(1000), Key: true, NALUs: [][]byte{sps, pps, {0x65, 2}}},
		{Codec: hub.CodecAAC, PTS: ms(1010), DTS: ms(1010), Frame: []byte{7, 7}},
		{Codec: hub.CodecOpus, PTS: ms(1015), DTS: ms(1015), Frame: []byte{1}}, // FLV cannot carry it
		{Codec: hub.CodecH264, PTS: ms(1040), DTS: ms(1040), NALUs: [][]byte{{0x41, 3}}},
	}
	var out []byte
	for _, u := range units {
		var err error
		if out, err = w.Append(out, u); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(bytes.NewReader(out))
	hv, ha, err := r.ReadHeader()
	if err != nil || !hv || !ha {
		t.Fatalf("header: video %v audio %v err %v", hv, ha, err)
	}
	want := []struct {
		typ TagType
		ts  uint32
		chk func(b []byte) bool
	}{
		{TagAudio, 0, func(b []byte) bool { a, _ := ParseAudio(b); return bytes.Equal(a.Config, asc) }},
		{TagVideo, 0, func(b []byte) bool { v, _ := ParseVideo(b); return bytes.Equal(v.SPS, sps) && bytes.Equal(v.PPS, pps) }},
		{TagVideo, 0, func(b []byte) bool {
			v, _ := ParseVideo(b)
			return v.Key && v.CTS == 80 && len(v.NALUs) == 1 && v.NALUs[0][0] == 0x65
		}},
		{TagAudio, 10, func(b []byte) bool { a, _ := ParseAudio(b); return bytes.Equal(a.Frame, []byte{7, 7}) }},
		{TagVideo, 40, func(b []byte) bool { v, _ := ParseVideo(b); return !v.Key && v.NALUs[0][1] == 3 }},
	}
	for i, wt := range want {
		tag, err := r.ReadTag()
		if err != nil {
			t.Fatalf("tag %d: %v", i, err)
		}
		if tag.Type != wt.typ || tag.Timestamp != wt.ts || !wt.chk(tag.Body) {
			t.Fatalf("tag %d: type %d ts %d body %x", i, tag.Type, tag.Timestamp, tag.Body)
		}
	}
	if _, err := r.ReadTag(); err == nil {
		t.Fatal("extra tag")
	}
}

func TestExtendedTimestampAndTagSize(t *testing.T) {
	b, err := AppendTag(nil, TagVideo, 0x12345678, []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if b[4] != 0x34 || b[5] != 0x56 || b[6] != 0x78 || b[7] != 0x12 {
		t.Fatalf("timestamp bytes %x", b[4:8])
	}
	if binary.BigEndian.Uint32(b[len(b)-4:]) != 11+3 {
		t.Fatal("PreviousTagSize")
	}
	if _, err := AppendTag(nil, TagVideo, 0, make([]byte, 1<<24)); err != ErrTagTooBig {
		t.Fatalf("oversize body: %v", err)
	}
}
