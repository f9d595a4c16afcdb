package gop

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/rtp/codecs/vp9"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/fanout/fanout/fastpath/route"
)

// frame is one coded picture of a fixture with its ground truth, taken from
// the bitstream itself (not from the RTP payload under test).
type frame struct {
	data []byte
	key  bool
}

// splitAnnexB returns the NAL units of an Annex B byte stream.
func splitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				nals = append(nals, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 {
		nals = append(nals, b[start:])
	}
	return nals
}

// annexBFrames groups NAL units into access units: a picture's slice (VCL
// NAL) closes the unit (the fixtures have one slice per picture).
func annexBFrames(t *testing.T, file string, vcl func(nal []byte) (isVCL, isKey bool)) []frame {
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	var au []byte
	for _, nal := range splitAnnexB(b) {
		au = append(append(au, 0, 0, 0, 1), nal...)
		if v, k := vcl(nal); v {
			frames = append(frames, frame{data: au, key: k})
			au = nil
		}
	}
	return frames
}

func ivfFrames(t *testing.T, file string, isKey func(f []byte) bool) []frame {
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	for {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame{data: data, key: isKey(data)})
	}
}

// av1HasSequenceHeader walks the temporal unit's OBUs (AV1 spec §5.3, size
// fields present in IVF) looking for a sequence header (type 1).
func av1HasSequenceHeader(tu []byte) bool {
	for len(tu) > 0 {
		typ, hasExt, hasSize := tu[0]>>3&0x0f, tu[0]&0x04 != 0, tu[0]&0x02 != 0
		off := 1
		if hasExt {
			off++
		}
		size := len(tu) - off
		if hasSize {
			size = 0
			for shift := 0; off < len(tu); shift += 7 {
				b := tu[off]
				off++
				size |= int(b&0x7f) << shift
				if b&0x80 == 0 {
					break
				}
			}
		}
		if typ == 1 {
			return true
		}
		if off+size > len(tu) {
			return false
		}
		tu = tu[off+size:]
	}
	return false
}

type fixture struct {
	codec   route.Codec
	payload rtp.Payloader
	frames  func(t *testing.T) []frame
}

func fixtures() map[string]fixture {
	return map[string]fixture{
		"h264": {route.CodecH264, &codecs.H264Payloader{}, func(t *testing.T) []frame {
			return annexBFrames(t, "h264.h264", func(n []byte) (bool, bool) {
				typ := n[0] & 0x1f
				return typ == 1 || typ == 5, typ == 5
			})
		}},
		"h265": {route.CodecH265, &codecs.H265Payloader{}, func(t *testing.T) []frame {
			return annexBFrames(t, "h265.h265", func(n []byte) (bool, bool) {
				typ := n[0] >> 1 & 0x3f
				return typ < 32, typ >= 16 && typ <= 21
			})
		}},
		"vp8": {route.CodecVP8, &codecs.VP8Payloader{EnablePictureID: true}, func(t *testing.T) []frame {
			return ivfFrames(t, "vp8.ivf", func(f []byte) bool { return f[0]&1 == 0 }) // RFC 6386 §9.1
		}},
		"vp9": {route.CodecVP9, &codecs.VP9Payloader{}, func(t *testing.T) []frame {
			return ivfFrames(t, "vp9.ivf", func(f []byte) bool {
				var h vp9.Header
				return h.Unmarshal(f) == nil && !h.NonKeyFrame
			})
		}},
		"av1": {route.CodecAV1, &codecs.AV1Payloader{}, func(t *testing.T) []frame {
			return ivfFrames(t, "av1.ivf", av1HasSequenceHeader)
		}},
	}
}

// packetize turns frames into RTP packets (MTU 1200, ts step 3000) and
// returns them with the index of the frame each belongs to.
func packetize(t *testing.T, fx fixture, frames []frame) (pkts [][]byte, frameOf []int) {
	seq := uint16(65500) // wraps inside the fixture
	for i, f := range frames {
		payloads := fx.payload.Payload(1200, f.data)
		for j, pl := range payloads {
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(i) * 3000,
				SSRC: 0x1234, Marker: j == len(payloads)-1}, Payload: pl}
			_ = p.SetExtension(1, []byte{0, byte(seq)}) // as if transport-cc were negotiated
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			pkts, frameOf = append(pkts, b), append(frameOf, i)
			seq++
		}
	}
	return pkts, frameOf
}

// TestRealFrames packetizes fixtures of every codec (6 frames, a keyframe
// every 3, made with ffmpeg) and checks the detection against the
// bitstream's own keyframe flags and what the cache holds at the end.
func TestRealFrames(t *testing.T) {
	for name, fx := range fixtures() {
		t.Run(name, func(t *testing.T) {
			frames := fx.frames(t)
			lastKey := -1
			for i, f := range frames {
				if f.key {
					lastKey = i
				}
			}
			if len(frames) < 4 || !frames[0].key || lastKey == 0 {
				t.Fatalf("fixture has %d frames, keyframes at 0 and %d", len(frames), lastKey)
			}
			pkts, frameOf := packetize(t, fx, frames)
			t.Logf("%d frames, last keyframe %d, %d packets", len(frames), lastKey, len(pkts))
			c := NewCache(fx.codec, DefaultMaxPackets, DefaultMaxBytes)
			fragmented := false
			for i, p := range pkts {
				kind := c.Push(p, 0)
				first := i == 0 || frameOf[i-1] != frameOf[i]
				if key := frames[frameOf[i]].key; kind == Keyframe && !key || first && key && kind == Other {
					t.Errorf("packet %d (frame %d, first %v, key %v): kind %d", i, frameOf[i], first, key, kind)
				}
				if !first && frames[frameOf[i]].key {
					fragmented = true
				}
			}
			if !fragmented {
				t.Error("fixture keyframes fit one packet: fragmentation is untested")
			}
			var want [][]byte
			for i, p := range pkts {
				if frameOf[i] >= lastKey {
					want = append(want, p)
				}
			}
			var got [][]byte
			if n := c.Replay(func(p []byte) { got = append(got, bytes.Clone(p)) }); n != len(want) || !c.Ready() {
				t.Fatalf("replayed %d packets, want %d (ready %v, stats %+v)", n, len(want), c.Ready(), c.Stats)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("replayed packet %d differs", i)
				}
			}
		})
	}
}
