//go:build !cgo || notranscode

package transcode

import "time"

// Available reports whether transcoding is compiled in.
func Available() bool { return false }

// AACToOpus is unavailable in this build.
type AACToOpus struct{}

// NewAACToOpus returns ErrUnavailable in this build.
func NewAACToOpus(asc []byte, bitrate int) (*AACToOpus, error) { return nil, ErrUnavailable }

// Transcode returns ErrUnavailable in this build.
func (t *AACToOpus) Transcode(frame []byte, pts time.Duration, out []Packet) ([]Packet, error) {
	return out, ErrUnavailable
}

// Close does nothing in this build.
func (t *AACToOpus) Close() {}

// OpusToAAC is unavailable in this build.
type OpusToAAC struct{}

// NewOpusToAAC returns ErrUnavailable in this build.
func NewOpusToAAC(bitrate int) (*OpusToAAC, error) { return nil, ErrUnavailable }

// Config returns nil in this build.
func (t *OpusToAAC) Config() []byte { return nil }

// Transcode returns ErrUnavailable in this build.
func (t *OpusToAAC) Transcode(pkt []byte, pts time.Duration, out []Packet) ([]Packet, error) {
	return out, ErrUnavailable
}

// Close does nothing in this build.
func (t *OpusToAAC) Close() {}

// OpusDecoder is unavailable in this build.
type OpusDecoder struct{}

// NewOpusDecoder returns ErrUnavailable in this build.
func NewOpusDecoder() (*OpusDecoder, error) { return nil, ErrUnavailable }

// Decode returns ErrUnavailable in this build.
func (d *OpusDecoder) Decode(pkt []byte, pcm []int16) ([]int16, error) { return pcm, ErrUnavailable }

// Close does nothing in this build.
func (d *OpusDecoder) Close() {}
