// Package transcode converts audio between RTMP and WebRTC: AAC to Opus
// (48 kHz stereo, 20 ms frames, libopus) for rtmp_to_rtc, and Opus to AAC
// (48 kHz stereo, 1024-sample frames, FFmpeg's native aac encoder) for
// rtc_to_rtmp. Resampling and re-framing run in an FFmpeg filter graph
// (aresample, aformat, asetnsamples) because go-astiav v0.16.0, the last
// release that builds against Debian 12's FFmpeg 5.1, has no swresample or
// audio FIFO binding.
//
// The cgo implementation is in files tagged `cgo && !notranscode`; with the
// `notranscode` tag or CGO_ENABLED=0 every constructor returns
// ErrUnavailable and Available reports false.
//
// A transcoder is not safe for concurrent use: bridge runs each one on one
// worker of its pool. Imported by bridge.
package transcode

import "errors"

// SampleRate is the rate of every Opus and AAC stream this package emits.
const SampleRate = 48000

// Sentinel errors.
var (
	// ErrUnavailable means the binary was built without transcoding.
	ErrUnavailable = errors.New("transcode: unavailable (built with notranscode or without cgo)")
	// ErrBadConfig means an AAC AudioSpecificConfig could not be used.
	ErrBadConfig = errors.New("transcode: bad audio config")
	// ErrCodec means FFmpeg lacks a needed codec or filter.
	ErrCodec = errors.New("transcode: codec or filter not found")
)

// Packet is one encoded output frame. PTS is in 1/48000 s; it may be
// negative for the encoder's priming frame.
type Packet struct {
	Data []byte
	PTS  int64
}
