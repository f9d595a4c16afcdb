package hub

import (
	"strings"
	"time"
)

// DefaultVhost is SRS's name for the vhost used when none matches.
const DefaultVhost = "__defaultVhost__"

// Key names a stream: vhost/app/stream, as SRS does.
type Key struct {
	Vhost  string
	App    string
	Stream string
}

// String returns "vhost/app/stream".
func (k Key) String() string {
	return k.Vhost + "/" + k.App + "/" + k.Stream
}

// NewKey builds a key, mapping an empty vhost to DefaultVhost and trimming
// slashes from app and stream.
func NewKey(vhost, app, stream string) Key {
	if vhost == "" {
		vhost = DefaultVhost
	}
	return Key{Vhost: vhost, App: strings.Trim(app, "/"), Stream: strings.Trim(stream, "/")}
}

// Codec identifies a track's codec.
type Codec uint8

// Codecs carried by the hub.
const (
	CodecNone Codec = iota
	CodecH264
	CodecAAC
	CodecOpus
)

// String returns the codec's short name.
func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "h264"
	case CodecAAC:
		return "aac"
	case CodecOpus:
		return "opus"
	}
	return "none"
}

// Tracks describes what a stream carries. Video SPS/PPS travel in-band in
// key units; AudioConfig is the AAC AudioSpecificConfig (empty for Opus).
type Tracks struct {
	// Origin says who publishes: OriginRTMP or OriginRTC.
	Origin      Origin
	Video       Codec
	Audio       Codec
	AudioConfig []byte
	SampleRate  int
	Channels    int
}

// Origin is the protocol a stream was published with.
type Origin uint8

// Origins.
const (
	OriginRTMP Origin = iota
	OriginRTC
)

// Unit is one access unit. Units are shared by every reader and must not be
// modified once written.
type Unit struct {
	Codec Codec
	// PTS and DTS are relative to the start of the stream.
	PTS time.Duration
	DTS time.Duration
	// NALUs holds the H.264 access unit (no start codes or length prefixes).
	NALUs [][]byte
	// Frame holds one audio frame (raw AAC access unit or Opus packet).
	Frame []byte
	// Key marks an H.264 IDR access unit; it then carries SPS and PPS.
	Key bool
}

// IsVideo reports whether the unit belongs to the video track.
func (u *Unit) IsVideo() bool { return u.Codec == CodecH264 }

// H.264 NAL unit types the bridge looks at (ITU-T H.264 table 7-1).
const (
	NALUTypeIDR = 5
	NALUTypeSEI = 6
	NALUTypeSPS = 7
	NALUTypePPS = 8
	NALUTypeAUD = 9
)

// Params returns the first SPS and PPS found in the unit's NAL units.
func (u *Unit) Params() (sps, pps []byte) {
	for _, n := range u.NALUs {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1F {
		case NALUTypeSPS:
			if sps == nil {
				sps = n
			}
		case NALUTypePPS:
			if pps == nil {
				pps = n
			}
		}
	}
	return sps, pps
}
