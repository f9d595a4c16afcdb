//go:build cgo && !notranscode

package transcode

/*
#cgo pkg-config: libavutil
#include <libavutil/frame.h>
#include <string.h>

// copy_packed copies the first plane of a packed (interleaved) frame.
static int copy_packed(const AVFrame *f, void *dst, int n) {
	if (f == NULL || f->extended_data == NULL || f->extended_data[0] == NULL) return -1;
	memcpy(dst, f->extended_data[0], n);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// errNoData means a decoded frame had no sample buffer.
var errNoData = errors.New("transcode: frame without samples")

// avFrame returns the C frame behind an astiav.Frame. go-astiav v0.16.0
// does not expose audio sample data; its Frame is a struct whose only field
// is the *AVFrame, which this relies on (pinned by go.mod).
func avFrame(f *astiav.Frame) *C.AVFrame {
	return *(**C.AVFrame)(unsafe.Pointer(f))
}

// appendS16 appends a packed s16 frame's samples to pcm.
func appendS16(pcm []int16, f *astiav.Frame) ([]int16, error) {
	n := f.NbSamples() * f.ChannelLayout().NbChannels()
	if n == 0 {
		return pcm, nil
	}
	start := len(pcm)
	pcm = append(pcm, make([]int16, n)...)
	if C.copy_packed(avFrame(f), unsafe.Pointer(&pcm[start]), C.int(n*2)) != 0 {
		return pcm[:start], errNoData
	}
	return pcm, nil
}

// OpusDecoder decodes Opus packets to 48 kHz interleaved stereo s16 PCM.
type OpusDecoder struct{ p *pipeline }

// NewOpusDecoder opens a decoder.
func NewOpusDecoder() (*OpusDecoder, error) {
	d := astiav.FindDecoderByName("libopus")
	if d == nil {
		d = astiav.FindDecoder(astiav.CodecIDOpus)
	}
	dec, err := openDecoder(d, SampleRate, nil)
	if err != nil {
		return nil, err
	}
	return &OpusDecoder{p: newPipeline(dec, nil, astiav.NewRational(1, SampleRate),
		"aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo")}, nil
}

// Decode decodes one packet and appends its samples to pcm.
func (d *OpusDecoder) Decode(pkt []byte, pcm []int16) ([]int16, error) {
	var ferr error
	err := d.p.decode(pkt, 0, func(f *astiav.Frame) error {
		pcm, ferr = appendS16(pcm, f)
		return ferr
	})
	return pcm, err
}

// Close frees the decoder.
func (d *OpusDecoder) Close() { d.p.close() }
