package sdpneg

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Canonical codec names (Codec.Name).
const (
	CodecOpus = "opus"
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecVP8  = "VP8"
	CodecVP9  = "VP9"
	CodecAV1  = "AV1"
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
)

// TWCCURI is the only RTP header extension Fanout negotiates.
const TWCCURI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

// Codec is one negotiated payload type.
type Codec struct {
	Name      string // canonical: "opus", "H264", "H265", "VP8", "VP9", "AV1", "PCMU", "PCMA"
	PT        uint8
	ClockRate uint32
	Channels  uint16
	Fmtp      string
	Feedback  []string // "nack", "nack pli", "ccm fir", "transport-cc"
}

// offered is one payload type of an m-line with its encoding name as
// written in the offer (echoed in the answer's rtpmap, e.g. Chrome's "AV1X").
type offered struct {
	Codec
	encoding string
}

// canonicalName maps an rtpmap encoding name, case-insensitively, to the
// canonical Codec.Name; ok is false for codecs Fanout does not relay
// (rtx, red, ulpfec, G722, telephone-event…).
func canonicalName(enc string) (string, bool) {
	switch strings.ToLower(enc) {
	case "opus":
		return CodecOpus, true
	case "h264":
		return CodecH264, true
	case "h265", "hevc":
		return CodecH265, true
	case "vp8":
		return CodecVP8, true
	case "vp9":
		return CodecVP9, true
	case "av1", "av1x": // AV1X: Chrome M96's name for AV1
		return CodecAV1, true
	case "pcmu":
		return CodecPCMU, true
	case "pcma":
		return CodecPCMA, true
	}
	return "", false
}

// mediaCodecs returns the supported payload types of one m-line in m= format
// order, with their rtpmap, fmtp and rtcp-fb lines. Static PTs 0 and 8
// without rtpmap are PCMU and PCMA (RFC 3551 Table 4).
func mediaCodecs(md *sdp.MediaDescription, kind Kind) []offered {
	rtpmap := map[uint8]string{}
	fmtp := map[uint8]string{}
	fb := map[uint8][]string{}
	var fbAll []string
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap", "fmtp", "rtcp-fb":
		default:
			continue
		}
		ptStr, rest, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
		rest = strings.TrimSpace(rest)
		if a.Key == "rtcp-fb" && ptStr == "*" {
			fbAll = append(fbAll, rest)
			continue
		}
		pt, ok := parsePT(ptStr)
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			rtpmap[pt] = rest
		case "fmtp":
			fmtp[pt] = rest
		case "rtcp-fb":
			fb[pt] = append(fb[pt], rest)
		}
	}
	var out []offered
	seen := map[uint8]bool{}
	for _, f := range md.MediaName.Formats {
		pt, ok := parsePT(f)
		if !ok || seen[pt] {
			continue
		}
		seen[pt] = true
		c, ok := makeCodec(pt, rtpmap, kind)
		if !ok {
			continue
		}
		c.Fmtp = fmtp[pt]
		c.Feedback = append(append([]string(nil), fb[pt]...), fbAll...)
		out = append(out, c)
	}
	return out
}

func makeCodec(pt uint8, rtpmap map[uint8]string, kind Kind) (offered, bool) {
	rm, ok := rtpmap[pt]
	if !ok {
		switch {
		case pt == 0 && kind == KindAudio:
			rm = "PCMU/8000"
		case pt == 8 && kind == KindAudio:
			rm = "PCMA/8000"
		default:
			return offered{}, false
		}
	}
	parts := strings.Split(rm, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return offered{}, false
	}
	name, ok := canonicalName(parts[0])
	if !ok || isVideoCodec(name) != (kind == KindVideo) || kind == KindOther {
		return offered{}, false
	}
	clock, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || clock == 0 {
		return offered{}, false
	}
	c := offered{encoding: parts[0]}
	c.Name, c.PT, c.ClockRate = name, pt, uint32(clock)
	if kind == KindAudio {
		c.Channels = 1
		if len(parts) == 3 {
			ch, err := strconv.ParseUint(parts[2], 10, 16)
			if err != nil || ch == 0 {
				return offered{}, false
			}
			c.Channels = uint16(ch)
		}
	}
	return c, validClock(c.Codec)
}

func isVideoCodec(name string) bool {
	switch name {
	case CodecH264, CodecH265, CodecVP8, CodecVP9, CodecAV1:
		return true
	}
	return false
}

// validClock: video is 90 kHz (RFC 6184, 7798, 7741, VP9 and AV1 RTP
// specs), Opus 48 kHz (RFC 7587), G.711 8 kHz (RFC 3551).
func validClock(c Codec) bool {
	switch c.Name {
	case CodecOpus:
		return c.ClockRate == 48000
	case CodecPCMU, CodecPCMA:
		return c.ClockRate == 8000
	}
	return c.ClockRate == 90000
}

// parsePT parses a dynamic or static RTP payload type (0-127, RFC 3550 §5.1).
func parsePT(s string) (uint8, bool) {
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil || v > 127 {
		return 0, false
	}
	return uint8(v), true
}

// fmtpParams splits "a=b;c=d" into lower-cased keys and trimmed values.
func fmtpParams(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// filterFeedback keeps the rtcp-fb values Fanout implements (SRS keeps nack
// and nack pli when NACK is on, transport-cc when TWCC is negotiated;
// Fanout also answers FIR, so ccm fir stays). Values are lower-cased,
// single-spaced and de-duplicated, in offer order.
func filterFeedback(in []string, nack, twcc bool) []string {
	var out []string
	for _, f := range in {
		f = strings.ToLower(strings.Join(strings.Fields(f), " "))
		keep := false
		switch f {
		case "nack", "nack pli":
			keep = nack
		case "transport-cc":
			keep = twcc
		case "ccm fir":
			keep = true
		}
		if keep && !contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// opusFmtp re-emits only the Opus parameters SRS keeps (minptime,
// useinbandfec, stereo (#3910), usedtx), in that order.
func opusFmtp(fmtp string) string {
	p := fmtpParams(fmtp)
	var parts []string
	for _, k := range []string{"minptime", "useinbandfec", "stereo", "usedtx"} {
		if v, ok := p[k]; ok && v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ";")
}

// h264Profile is an H.264 profile as signalled by profile-level-id
// (RFC 6184 §8.1, Table 5).
type h264Profile uint8

const (
	h264Unknown h264Profile = iota
	h264ConstrainedBaseline
	h264Baseline
	h264Main
	h264Extended
	h264High
	h264ConstrainedHigh
	h264High10
	h264High422
	h264High444
)

// h264ProfileOf classifies a profile-level-id ("42e01f") by profile_idc
// and the constraint flags of profile-iop.
func h264ProfileOf(plid string) h264Profile {
	b, err := hex.DecodeString(plid)
	if err != nil || len(b) != 3 {
		return h264Unknown
	}
	idc, iop := b[0], b[1]
	switch idc {
	case 0x42:
		if iop&0x40 != 0 {
			return h264ConstrainedBaseline
		}
		return h264Baseline
	case 0x4d:
		if iop&0x80 != 0 {
			return h264ConstrainedBaseline
		}
		return h264Main
	case 0x58:
		switch {
		case iop&0xc0 == 0xc0:
			return h264ConstrainedBaseline
		case iop&0x80 != 0:
			return h264Baseline
		}
		return h264Extended
	case 0x64:
		if iop&0x0c == 0x0c {
			return h264ConstrainedHigh
		}
		return h264High
	case 0x6e:
		return h264High10
	case 0x7a:
		return h264High422
	case 0xf4:
		return h264High444
	}
	return h264Unknown
}

// h264Decodes reports whether a decoder of profile dec can decode a stream
// of profile enc: each profile's coding tools are a superset of those of
// Constrained Baseline, and High's of Main and Constrained High.
func h264Decodes(dec, enc h264Profile) bool {
	if dec == enc {
		return dec != h264Unknown
	}
	switch dec {
	case h264Baseline, h264Main, h264Extended, h264ConstrainedHigh:
		return enc == h264ConstrainedBaseline
	case h264High, h264High10, h264High422, h264High444:
		return enc == h264ConstrainedBaseline || enc == h264Main || enc == h264ConstrainedHigh ||
			(dec != h264High && enc == h264High)
	}
	return false
}

// h264PacketizationMode returns packetization-mode, default 0 (RFC 6184 §8.1).
func h264PacketizationMode(p map[string]string) string {
	if v, ok := p["packetization-mode"]; ok && v != "" {
		return v
	}
	return "0"
}
