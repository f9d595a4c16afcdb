//go:build cgo && !notranscode

package transcode

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"
)

// Available reports whether transcoding is compiled in.
func Available() bool { return true }

func init() { astiav.SetLogLevel(astiav.LogLevelError) }

// inputPadding is FFmpeg's AV_INPUT_BUFFER_PADDING_SIZE: decoders may read
// that far past the end of a packet.
const inputPadding = 64

// graph is abuffer → filters → abuffersink, built from the first decoded
// frame so it matches whatever the decoder produces.
type graph struct {
	g         *astiav.FilterGraph
	src, sink *astiav.FilterContext
	out       *astiav.Frame
	outTB     astiav.Rational
}

func newGraph(in *astiav.Frame, inTB astiav.Rational, filters string) (*graph, error) {
	g := &graph{g: astiav.AllocFilterGraph(), out: astiav.AllocFrame()}
	abuffer, abuffersink := astiav.FindFilterByName("abuffer"), astiav.FindFilterByName("abuffersink")
	if abuffer == nil || abuffersink == nil {
		g.free()
		return nil, ErrCodec
	}
	args := astiav.FilterArgs{
		"channel_layout": in.ChannelLayout().String(),
		"sample_fmt":     in.SampleFormat().Name(),
		"sample_rate":    strconv.Itoa(in.SampleRate()),
		"time_base":      inTB.String(),
	}
	var err error
	if g.src, err = g.g.NewFilterContext(abuffer, "in", args); err != nil {
		g.free()
		return nil, fmt.Errorf("abuffer: %w", err)
	}
	if g.sink, err = g.g.NewFilterContext(abuffersink, "out", nil); err != nil {
		g.free()
		return nil, fmt.Errorf("abuffersink: %w", err)
	}
	if err = g.parse(filters); err != nil {
		g.free()
		return nil, err
	}
	g.outTB = g.sink.Inputs()[0].TimeBase()
	return g, nil
}

func (g *graph) parse(filters string) error {
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(g.src)
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(g.sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	if err := g.g.Parse(filters, inputs, outputs); err != nil {
		return fmt.Errorf("filter graph %q: %w", filters, err)
	}
	if err := g.g.Configure(); err != nil {
		return fmt.Errorf("filter graph configure: %w", err)
	}
	return nil
}

// push feeds f and calls each for every frame the graph releases.
func (g *graph) push(f *astiav.Frame, each func(*astiav.Frame) error) error {
	if err := g.src.BuffersrcAddFrame(f, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef)); err != nil {
		return fmt.Errorf("filter input: %w", err)
	}
	for {
		g.out.Unref()
		err := g.sink.BuffersinkGetFrame(g.out, astiav.NewBuffersinkFlags())
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("filter output: %w", err)
		}
		if err := each(g.out); err != nil {
			return err
		}
	}
}

func (g *graph) free() {
	if g.g != nil {
		g.g.Free()
	}
	g.out.Free()
}

// pipeline decodes, filters and (when enc is set) encodes.
type pipeline struct {
	dec, enc *astiav.CodecContext
	inTB     astiav.Rational
	filters  string
	pkt      *astiav.Packet
	encPkt   *astiav.Packet
	frame    *astiav.Frame
	g        *graph
	pad      []byte
	next     int64 // expected PTS of the next packet; valid when started
	started  bool
}

func newPipeline(dec, enc *astiav.CodecContext, inTB astiav.Rational, filters string) *pipeline {
	return &pipeline{dec: dec, enc: enc, inTB: inTB, filters: filters,
		pkt: astiav.AllocPacket(), encPkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}
}

// decode sends one packet (pts in inTB) and passes every filtered frame to each.
func (p *pipeline) decode(data []byte, pts int64, each func(*astiav.Frame) error) error {
	p.pad = append(append(p.pad[:0], data...), make([]byte, inputPadding)...)
	p.pkt.Unref()
	if err := p.pkt.FromData(p.pad); err != nil {
		return fmt.Errorf("packet: %w", err)
	}
	p.pkt.SetSize(len(data))
	p.pkt.SetPts(pts)
	p.pkt.SetDts(pts)
	if err := p.dec.SendPacket(p.pkt); err != nil && !errors.Is(err, astiav.ErrEagain) {
		return fmt.Errorf("decode: %w", err)
	}
	for {
		p.frame.Unref()
		err := p.dec.ReceiveFrame(p.frame)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if p.g == nil {
			if p.g, err = newGraph(p.frame, p.inTB, p.filters); err != nil {
				return err
			}
		}
		if err := p.g.push(p.frame, each); err != nil {
			return err
		}
	}
}

// transcode runs one input packet through to encoded packets appended to out.
func (p *pipeline) transcode(data []byte, pts time.Duration, out []Packet) ([]Packet, error) {
	in := int64(pts) * int64(p.inTB.Den()) / (int64(time.Second) * int64(p.inTB.Num()))
	err := p.decode(data, in, func(f *astiav.Frame) error {
		f.SetPts(astiav.RescaleQ(f.Pts(), p.g.outTB, p.enc.TimeBase()))
		if err := p.enc.SendFrame(f); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		return p.drain(&out)
	})
	return out, err
}

func (p *pipeline) drain(out *[]Packet) error {
	for {
		p.encPkt.Unref()
		err := p.enc.ReceivePacket(p.encPkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		pts := p.smooth(astiav.RescaleQ(p.encPkt.Pts(), p.enc.TimeBase(), astiav.NewRational(1, SampleRate)))
		*out = append(*out, Packet{Data: append([]byte(nil), p.encPkt.Data()...), PTS: pts})
	}
}

// smooth snaps a packet's PTS to the previous one plus one frame when it is
// within half a frame of it: resampling rounds frame PTS by a sample or two,
// and RTP timestamps must advance by exactly one frame.
func (p *pipeline) smooth(pts int64) int64 {
	step := int64(p.enc.FrameSize())
	if p.started && pts-p.next < step/2 && p.next-pts < step/2 {
		pts = p.next
	}
	p.started, p.next = true, pts+step
	return pts
}

func (p *pipeline) close() {
	if p.g != nil {
		p.g.free()
	}
	p.pkt.Free()
	p.encPkt.Free()
	p.frame.Free()
	if p.dec != nil {
		p.dec.Free()
	}
	if p.enc != nil {
		p.enc.Free()
	}
}
