package flv

import (
	"bytes"
	"time"

	"github.com/fanout/fanout/bridge/hub"
)

// UnitWriter turns a hub stream's units into FLV bytes: header and AAC
// sequence header first, then tags from the first key frame on, with
// timestamps starting at zero and an AVC sequence header whenever the
// SPS/PPS change.
type UnitWriter struct {
	tr       hub.Tracks
	headed   bool
	started  bool
	base     time.Duration
	sps, pps []byte
	body     []byte
	keep     [][]byte
}

// NewUnitWriter returns a writer for a stream with the given tracks.
func NewUnitWriter(tr hub.Tracks) *UnitWriter { return &UnitWriter{tr: tr} }

func (w *UnitWriter) hasVideo() bool { return w.tr.Video == hub.CodecH264 }
func (w *UnitWriter) hasAudio() bool { return w.tr.Audio == hub.CodecAAC }

// Append appends the FLV bytes for u to dst. Units before the first key
// frame and codecs FLV cannot carry are skipped (dst returned unchanged).
func (w *UnitWriter) Append(dst []byte, u *hub.Unit) ([]byte, error) {
	if w.hasVideo() && !w.started && (!u.IsVideo() || !u.Key) {
		return dst, nil
	}
	if !u.IsVideo() && (u.Codec != hub.CodecAAC || !w.hasAudio()) {
		return dst, nil
	}
	if !w.started {
		w.started, w.base = true, u.DTS
	}
	ts := ms(u.DTS - w.base)
	var err error
	if !w.headed {
		w.headed = true
		dst = AppendHeader(dst, w.hasVideo(), w.hasAudio())
		if w.hasAudio() {
			w.body = AppendAACSequenceHeader(w.body[:0], w.tr.AudioConfig)
			if dst, err = AppendTag(dst, TagAudio, ts, w.body); err != nil {
				return dst, err
			}
		}
	}
	if !u.IsVideo() {
		w.body = AppendAACFrame(w.body[:0], u.Frame)
		return AppendTag(dst, TagAudio, ts, w.body)
	}
	return w.appendVideo(dst, ts, u)
}

func (w *UnitWriter) appendVideo(dst []byte, ts uint32, u *hub.Unit) ([]byte, error) {
	var err error
	if sps, pps := u.Params(); sps != nil && pps != nil &&
		(!bytes.Equal(sps, w.sps) || !bytes.Equal(pps, w.pps)) {
		w.sps, w.pps = append(w.sps[:0], sps...), append(w.pps[:0], pps...)
		if w.body, err = AppendAVCSequenceHeader(w.body[:0], sps, pps); err != nil {
			return dst, err
		}
		if dst, err = AppendTag(dst, TagVideo, ts, w.body); err != nil {
			return dst, err
		}
	}
	w.keep = w.keep[:0]
	for _, n := range u.NALUs {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1F {
		case hub.NALUTypeSPS, hub.NALUTypePPS, hub.NALUTypeAUD:
			continue
		}
		w.keep = append(w.keep, n)
	}
	if len(w.keep) == 0 {
		return dst, nil
	}
	w.body = AppendAVCNALUs(w.body[:0], u.Key, int32((u.PTS-u.DTS)/time.Millisecond), w.keep)
	return AppendTag(dst, TagVideo, ts, w.body)
}

func ms(d time.Duration) uint32 {
	if d < 0 {
		return 0
	}
	return uint32(d / time.Millisecond)
}
