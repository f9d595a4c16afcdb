//go:build cgo && !notranscode

package transcode

import (
	"fmt"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// AACToOpus turns AAC frames into 20 ms Opus packets, 48 kHz stereo.
type AACToOpus struct{ p *pipeline }

// NewAACToOpus opens a transcoder for the AAC stream described by asc
// (AudioSpecificConfig), encoding Opus at bitrate bit/s.
func NewAACToOpus(asc []byte, bitrate int) (*AACToOpus, error) {
	var cfg mpeg4audio.AudioSpecificConfig
	if err := cfg.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	dec, err := openDecoder(astiav.FindDecoder(astiav.CodecIDAac), cfg.SampleRate, asc)
	if err != nil {
		return nil, fmt.Errorf("aac decoder: %w", err)
	}
	enc, err := openEncoder("libopus", astiav.SampleFormatS16, bitrate, map[string]string{"frame_duration": "20"})
	if err != nil {
		dec.Free()
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	filters := "aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo,asetnsamples=n=" +
		strconv.Itoa(enc.FrameSize()) + ":p=0"
	return &AACToOpus{p: newPipeline(dec, enc, astiav.NewRational(1, cfg.SampleRate), filters)}, nil
}

// Transcode decodes one raw AAC frame presented at pts and appends the Opus
// packets that are ready to out.
func (t *AACToOpus) Transcode(frame []byte, pts time.Duration, out []Packet) ([]Packet, error) {
	return t.p.transcode(frame, pts, out)
}

// Close frees the codecs.
func (t *AACToOpus) Close() { t.p.close() }

// OpusToAAC turns Opus packets into AAC-LC frames, 48 kHz stereo.
type OpusToAAC struct {
	p   *pipeline
	asc []byte
}

// NewOpusToAAC opens a transcoder encoding AAC at bitrate bit/s.
func NewOpusToAAC(bitrate int) (*OpusToAAC, error) {
	d := astiav.FindDecoderByName("libopus")
	if d == nil {
		d = astiav.FindDecoder(astiav.CodecIDOpus)
	}
	dec, err := openDecoder(d, SampleRate, nil)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	enc, err := openEncoder("aac", astiav.SampleFormatFltp, bitrate, nil)
	if err != nil {
		dec.Free()
		return nil, fmt.Errorf("aac encoder: %w", err)
	}
	filters := "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,asetnsamples=n=" +
		strconv.Itoa(enc.FrameSize()) + ":p=0"
	return &OpusToAAC{p: newPipeline(dec, enc, astiav.NewRational(1, SampleRate), filters),
		asc: append([]byte(nil), enc.ExtraData()...)}, nil
}

// Config returns the AAC AudioSpecificConfig of the output.
func (t *OpusToAAC) Config() []byte { return t.asc }

// Transcode decodes one Opus packet presented at pts and appends the AAC
// frames that are ready to out.
func (t *OpusToAAC) Transcode(pkt []byte, pts time.Duration, out []Packet) ([]Packet, error) {
	return t.p.transcode(pkt, pts, out)
}

// Close frees the codecs.
func (t *OpusToAAC) Close() { t.p.close() }

func openDecoder(c *astiav.Codec, rate int, extra []byte) (*astiav.CodecContext, error) {
	if c == nil {
		return nil, ErrCodec
	}
	cc := astiav.AllocCodecContext(c)
	cc.SetSampleRate(rate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetTimeBase(astiav.NewRational(1, rate))
	if len(extra) > 0 {
		if err := cc.SetExtraData(extra); err != nil {
			cc.Free()
			return nil, err
		}
	}
	if err := cc.Open(c, nil); err != nil {
		cc.Free()
		return nil, err
	}
	return cc, nil
}

func openEncoder(name string, sf astiav.SampleFormat, bitrate int, opts map[string]string) (*astiav.CodecContext, error) {
	c := astiav.FindEncoderByName(name)
	if c == nil {
		return nil, ErrCodec
	}
	cc := astiav.AllocCodecContext(c)
	cc.SetSampleRate(SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetSampleFormat(sf)
	cc.SetBitRate(int64(bitrate))
	cc.SetTimeBase(astiav.NewRational(1, SampleRate))
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range opts {
		if err := d.Set(k, v, astiav.NewDictionaryFlags()); err != nil {
			cc.Free()
			return nil, err
		}
	}
	if err := cc.Open(c, d); err != nil {
		cc.Free()
		return nil, err
	}
	return cc, nil
}
