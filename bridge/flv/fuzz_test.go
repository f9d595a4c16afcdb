package flv

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader parses arbitrary bytes as an FLV stream and every tag body as
// video and audio: errors are fine, panics are not. Seeds include the start
// of an FLV written by ffmpeg (testdata/fuzz/FuzzReader).
func FuzzReader(f *testing.F) {
	f.Add(AppendHeader(nil, true, true))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		if _, _, err := r.ReadHeader(); err != nil {
			return
		}
		for range 10000 {
			tag, err := r.ReadTag()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, ErrShortTag) || errors.Is(err, ErrBadTagSize) ||
					errors.Is(err, io.ErrUnexpectedEOF) {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			_, _ = ParseVideo(tag.Body)
			_, _ = ParseAudio(tag.Body)
		}
	})
}

// FuzzMuxRoundTrip writes arbitrary NAL units and audio frames through the
// muxer and reads them back unchanged.
func FuzzMuxRoundTrip(f *testing.F) {
	f.Add([]byte{0x65, 1, 2, 3, 0, 0x41, 9}, []byte{0x21, 0x10}, uint32(40), true)
	f.Add([]byte{}, []byte{}, uint32(0xFFFFFFFF), false)
	f.Fuzz(func(t *testing.T, nalData, frame []byte, ts uint32, key bool) {
		nalus := bytes.Split(nalData, []byte{0})
		nalus = deleteEmpty(nalus)
		out := AppendHeader(nil, true, true)
		var err error
		if out, err = AppendTag(out, TagVideo, ts, AppendAVCNALUs(nil, key, -5, nalus)); err != nil {
			t.Fatal(err)
		}
		if out, err = AppendTag(out, TagAudio, ts, AppendAACFrame(nil, frame)); err != nil {
			t.Fatal(err)
		}
		r := NewReader(bytes.NewReader(out))
		if _, _, err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		vt, err := r.ReadTag()
		if err != nil || vt.Timestamp != ts {
			t.Fatalf("video tag: %v ts %d", err, vt.Timestamp)
		}
		v, err := ParseVideo(vt.Body)
		if err != nil || v.Key != key || v.CTS != -5 || len(v.NALUs) != len(nalus) {
			t.Fatalf("video body: %+v %v", v, err)
		}
		for i := range nalus {
			if !bytes.Equal(v.NALUs[i], nalus[i]) {
				t.Fatalf("nalu %d differs", i)
			}
		}
		at, err := r.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if a, err := ParseAudio(at.Body); err != nil || !bytes.Equal(a.Frame, frame) {
			t.Fatalf("audio body: %v", err)
		}
	})
}

func deleteEmpty(in [][]byte) [][]byte {
	out := in[:0]
	for _, b := range in {
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}
