package sdpneg

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Options are the per-request negotiation knobs.
type Options struct {
	VideoCodec string // ?codec=: "", "h264", "hevc"/"h265", "vp8", "vp9", "av1"; unknown = ""
	AudioCodec string // "", "opus", "pcmu", "pcma"; unknown = ""
	NACK, TWCC bool
}

// Track is one negotiated media flow, in offer m-line order.
type Track struct {
	Kind    Kind
	Mid     string
	Codec   Codec  // publish: the publisher's PT; play: the player's PT
	SSRC    uint32 // publish: from a=ssrc (FID group first); play: 0
	RTXSSRC uint32 // publish: from a=ssrc-group:FID; 0 if absent
	TWCCExt uint8  // negotiated transport-cc extmap id, 0 = none
	// DDExt is the negotiated AV1 dependency descriptor extmap id (dd.go),
	// 0 = none: the publisher's, or the player's to forward it under.
	DDExt uint8
	// Simulcast is a publisher's negotiated simulcast video (RFC 8853),
	// nil for one encoding (simulcast.go).
	Simulcast *Simulcast
}

// Negotiated is the result of a negotiation: the media flows (Tracks) and,
// unexported, one answer line per offer m-line.
type Negotiated struct {
	Play   bool
	Tracks []Track // one per m-line that carries media; inactive m-lines have none
	lines  []line
	mixed  bool // the answer allows mixed extension headers (dd.go)
}

// line is one answer m-line.
type line struct {
	kind     Kind
	mid      string
	dir      string // answer direction
	codec    Codec
	encoding string // rtpmap name as the peer wrote it
	twcc     uint8
	dd       uint8      // AV1 dependency descriptor extmap id (dd.go)
	sim      *Simulcast // publish: answer a=simulcast:recv
}

// StreamDesc is what a stream carries, i.e. the publisher's codecs.
type StreamDesc struct{ Audio, Video *Codec }

// DefaultStreamDesc is the description SRS gives a stream that nobody
// publishes yet, so players can connect first (#2362): Opus PT 111
// 48000/2 and H.264 PT 102 Constrained Baseline packetization-mode 1.
func DefaultStreamDesc() StreamDesc {
	return StreamDesc{
		Audio: &Codec{Name: CodecOpus, PT: 111, ClockRate: 48000, Channels: 2,
			Fmtp: "minptime=10;useinbandfec=1"},
		Video: &Codec{Name: CodecH264, PT: 102, ClockRate: 90000,
			Fmtp: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"},
	}
}

// NegotiatePublish validates a publisher's offer and picks one codec per
// m-line: audio Opus (G.711 if asked for or the only one offered), video
// H.264 unless Options.VideoCodec asks for another, H.264 preferring
// 42e01f with packetization-mode=1 and level-asymmetry-allowed=1. Errors
// wrap ErrUnsupported (422) or ErrMalformed (400).
func NegotiatePublish(o *Offer, opt Options) (*Negotiated, error) {
	if err := validate(o, false); err != nil {
		return nil, err
	}
	n := &Negotiated{}
	for i := range o.Media {
		m := &o.Media[i]
		codecs := mediaCodecs(m.Desc, m.Kind)
		c, ok := pickCodec(codecs, m.Kind, opt)
		if !ok {
			return nil, noCodec(m)
		}
		ln := n.addLine(o, m, c, opt, DirRecvOnly)
		if ln.dir == DirInactive {
			continue
		}
		t := Track{Kind: m.Kind, Mid: m.Mid, Codec: ln.codec, TWCCExt: ln.twcc, DDExt: ln.dd}
		t.SSRC, t.RTXSSRC = offerSSRCs(m.Desc)
		if m.Kind == KindVideo {
			if sim := parseSimulcast(m.Desc); sim != nil {
				t.Simulcast, ln.sim = sim, sim
				t.SSRC, t.RTXSSRC = 0, 0 // each layer's SSRC is learnt from its RID
			}
		}
		n.Tracks = append(n.Tracks, t)
	}
	return n, nil
}

// NegotiatePlay validates a player's offer against the stream s. For each
// m-line the player's own PT for the stream's codec is chosen (same name and
// clock; for H.264 the same packetization-mode and a profile that decodes
// the stream's, falling back to any H.264). An m-line of a kind the stream
// does not carry is answered inactive and gets no Track.
func NegotiatePlay(o *Offer, s StreamDesc, opt Options) (*Negotiated, error) {
	if err := validate(o, true); err != nil {
		return nil, err
	}
	n := &Negotiated{Play: true}
	for i := range o.Media {
		m := &o.Media[i]
		codecs := mediaCodecs(m.Desc, m.Kind)
		sc := s.Audio
		if m.Kind == KindVideo {
			sc = s.Video
		}
		var (
			c  offered
			ok bool
		)
		if sc != nil {
			c, ok = matchCodec(codecs, *sc)
		} else {
			c, ok = pickCodec(codecs, m.Kind, opt)
		}
		if !ok {
			return nil, noCodec(m)
		}
		dir := DirSendOnly
		if sc == nil {
			dir = DirInactive
		}
		ln := n.addLine(o, m, c, opt, dir)
		if ln.dir == DirInactive {
			continue
		}
		n.Tracks = append(n.Tracks, Track{Kind: m.Kind, Mid: m.Mid, Codec: ln.codec, TWCCExt: ln.twcc, DDExt: ln.dd})
	}
	return n, nil
}

// addLine appends the answer line for m. An inactive offer m-line is
// answered inactive (RFC 3264 §6.1).
func (n *Negotiated) addLine(o *Offer, m *Media, c offered, opt Options, dir string) *line {
	if m.Direction == DirInactive {
		dir = DirInactive
	}
	var twcc uint8
	if opt.TWCC {
		twcc = twccExt(m.Desc)
	}
	codec := c.Codec
	codec.Feedback = filterFeedback(c.Feedback, opt.NACK, twcc != 0)
	if codec.Name == CodecOpus {
		codec.Fmtp = opusFmtp(codec.Fmtp)
	}
	mixed := allowMixed(o.SDP, m.Desc)
	dd := ddExt(m.Desc, codec.Name, mixed)
	n.mixed = n.mixed || dd != 0 && mixed
	n.lines = append(n.lines, line{kind: m.Kind, mid: m.Mid, dir: dir, codec: codec,
		encoding: c.encoding, twcc: twcc, dd: dd})
	return &n.lines[len(n.lines)-1]
}

func noCodec(m *Media) error {
	return fmt.Errorf("%w: no supported codec in %s m-line %q", ErrUnsupported, m.Kind, m.Mid)
}

// validate applies SRS's offer checks (§1.8) plus WHIP's one-MediaStream
// rule (RFC 9725 §4.2: at most one audio and one video track).
func validate(o *Offer, play bool) error {
	if o == nil || o.SDP == nil || len(o.Media) == 0 {
		return fmt.Errorf("%w: no m-line", ErrMalformed)
	}
	if !hasBundle(o.SDP) {
		return fmt.Errorf("%w: no BUNDLE group", ErrUnsupported)
	}
	var audio, video int
	for _, m := range o.Media {
		switch m.Kind {
		case KindAudio:
			audio++
		case KindVideo:
			video++
		}
	}
	if audio+video == 0 {
		return fmt.Errorf("%w: no audio or video m-line", ErrUnsupported)
	}
	for _, m := range o.Media {
		if err := validateMedia(&m, play); err != nil {
			return err
		}
	}
	switch {
	case audio > 1:
		return fmt.Errorf("%w: more than one audio m-line", ErrUnsupported)
	case video > 1:
		return fmt.Errorf("%w: more than one video m-line", ErrUnsupported)
	}
	return nil
}

func validateMedia(m *Media, play bool) error {
	switch {
	case m.Kind == KindOther && strings.EqualFold(m.Type, "application"):
		return fmt.Errorf("%w: m=application (data channel) is not supported", ErrUnsupported)
	case m.Kind == KindOther:
		return fmt.Errorf("%w: m=%s is not supported", ErrUnsupported, truncate(m.Type))
	case !m.RTCPMux:
		return fmt.Errorf("%w: m-line %q without rtcp-mux", ErrUnsupported, m.Mid)
	case !play && m.Direction == DirRecvOnly:
		return fmt.Errorf("%w: publish offer has recvonly m-line %q", ErrUnsupported, m.Mid)
	case play && m.Direction == DirSendOnly:
		return fmt.Errorf("%w: play offer has sendonly m-line %q", ErrUnsupported, m.Mid)
	}
	return nil
}

// hasBundle reports an a=group:BUNDLE (RFC 8843); other groups (LS) are ignored.
func hasBundle(sd *sdp.SessionDescription) bool {
	for _, a := range sd.Attributes {
		if a.Key != "group" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) > 0 && strings.EqualFold(f[0], "BUNDLE") {
			return true
		}
	}
	return false
}

// pickCodec chooses the codec a publisher sends (or, for a kind the stream
// does not carry, the codec a player's inactive line is answered with).
func pickCodec(codecs []offered, kind Kind, opt Options) (offered, bool) {
	if kind == KindAudio {
		return pickAudio(codecs, strings.ToLower(opt.AudioCodec))
	}
	return pickVideo(codecs, videoPref(opt.VideoCodec))
}

func pickAudio(codecs []offered, pref string) (offered, bool) {
	switch pref {
	case "pcmu":
		return first(codecs, CodecPCMU)
	case "pcma":
		return first(codecs, CodecPCMA)
	}
	if c, ok := first(codecs, CodecOpus); ok {
		return c, true
	}
	for _, c := range codecs {
		if c.Name == CodecPCMU || c.Name == CodecPCMA {
			return c, true
		}
	}
	return offered{}, false
}

// videoPref maps ?codec= to a canonical name; "" means the default choice.
func videoPref(s string) string {
	switch strings.ToLower(s) {
	case "h264", "avc":
		return CodecH264
	case "hevc", "h265":
		return CodecH265
	case "vp8":
		return CodecVP8
	case "vp9":
		return CodecVP9
	case "av1", "av1x":
		return CodecAV1
	}
	return ""
}

func pickVideo(codecs []offered, pref string) (offered, bool) {
	if pref == "" || pref == CodecH264 {
		if c, ok := pickH264(codecs); ok || pref == CodecH264 {
			return c, ok
		}
		// Fanout extension: without codec= and without H.264, relay the
		// first supported codec the publisher offers.
		if len(codecs) > 0 {
			return codecs[0], true
		}
		return offered{}, false
	}
	return first(codecs, pref)
}

// pickH264 is SRS's choice: 42e01f + packetization-mode=1 +
// level-asymmetry-allowed=1, else any pm=1 + lasym=1, else the first H.264.
func pickH264(codecs []offered) (offered, bool) {
	var pm1, backup *offered
	for i := range codecs {
		c := &codecs[i]
		if c.Name != CodecH264 {
			continue
		}
		p := fmtpParams(c.Fmtp)
		good := p["packetization-mode"] == "1" && p["level-asymmetry-allowed"] == "1"
		if good && strings.EqualFold(p["profile-level-id"], "42e01f") {
			return *c, true
		}
		if good && pm1 == nil {
			pm1 = c
		}
		if backup == nil {
			backup = c
		}
	}
	if pm1 != nil {
		return *pm1, true
	}
	if backup != nil {
		return *backup, true
	}
	return offered{}, false
}

func first(codecs []offered, name string) (offered, bool) {
	for _, c := range codecs {
		if c.Name == name {
			return c, true
		}
	}
	return offered{}, false
}

// matchCodec finds the player's PT for the stream codec sc: same name and
// clock, then the best fmtp compatibility score, first in offer order on ties.
func matchCodec(codecs []offered, sc Codec) (offered, bool) {
	best, bestScore := -1, 0
	sp := fmtpParams(sc.Fmtp)
	for i, c := range codecs {
		if c.Name != sc.Name || c.ClockRate != sc.ClockRate {
			continue
		}
		if s := fmtpScore(sc.Name, sp, fmtpParams(c.Fmtp)); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return offered{}, false
	}
	return codecs[best], true
}

// fmtpScore ranks how well a player's fmtp p fits the stream's fmtp s
// (higher is better, always ≥ 1 for the same codec).
func fmtpScore(name string, s, p map[string]string) int {
	param := func(m map[string]string, k, def string) string {
		if v := m[k]; v != "" {
			return strings.ToLower(v)
		}
		return def
	}
	switch name {
	case CodecH264:
		score := 1
		if h264PacketizationMode(s) == h264PacketizationMode(p) {
			score = 2
			sprof := h264ProfileOf(param(s, "profile-level-id", "42001f"))
			pprof := h264ProfileOf(param(p, "profile-level-id", "42001f"))
			if sprof == pprof {
				score = 4
			} else if h264Decodes(pprof, sprof) {
				score = 3
			}
		}
		return score
	case CodecVP9:
		return sameParam(param(s, "profile-id", "0"), param(p, "profile-id", "0"))
	case CodecAV1:
		return sameParam(param(s, "profile", "0"), param(p, "profile", "0"))
	case CodecH265:
		return sameParam(param(s, "profile-id", "1"), param(p, "profile-id", "1"))
	}
	return 1
}

func sameParam(a, b string) int {
	if a == b {
		return 2
	}
	return 1
}

// twccExt returns the id of the offer's transport-cc extmap (RFC 8285
// §8: "a=extmap:<id>[/<direction>] <uri>"), 0 if absent.
func twccExt(md *sdp.MediaDescription) uint8 {
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 2 || f[1] != TWCCURI {
			continue
		}
		idStr, _, _ := strings.Cut(f[0], "/")
		id, err := strconv.ParseUint(idStr, 10, 8)
		if err == nil && id >= 1 && id <= 255 && id != 15 {
			return uint8(id)
		}
	}
	return 0
}

// offerSSRCs returns the publisher's media and RTX SSRC: the FID group
// (RFC 5576 §4.2 with RFC 4588) if present, else the first a=ssrc line.
func offerSSRCs(md *sdp.MediaDescription) (media, rtx uint32) {
	for _, a := range md.Attributes {
		if a.Key != "ssrc-group" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) >= 3 && strings.EqualFold(f[0], "FID") {
			m, err1 := strconv.ParseUint(f[1], 10, 32)
			r, err2 := strconv.ParseUint(f[2], 10, 32)
			if err1 == nil && err2 == nil {
				return uint32(m), uint32(r)
			}
		}
	}
	for _, a := range md.Attributes {
		if a.Key != "ssrc" {
			continue
		}
		s, _, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
		if v, err := strconv.ParseUint(s, 10, 32); err == nil {
			return uint32(v), 0
		}
	}
	return 0, 0
}
