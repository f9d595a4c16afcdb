package sdpneg

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// Kind is the media kind of an m-line.
type Kind uint8

// Media kinds. KindOther is any m-line that is neither audio nor video
// (m=application, m=text…); negotiation rejects it.
const (
	KindAudio Kind = 0
	KindVideo Kind = 1
	KindOther Kind = 2
)

// String returns "audio", "video" or "other".
func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return "other"
}

// Direction values of an m-line, as written in a=sendrecv etc. An m-line
// without a direction attribute is sendrecv (RFC 3264 §5.1).
const (
	DirSendRecv = "sendrecv"
	DirSendOnly = "sendonly"
	DirRecvOnly = "recvonly"
	DirInactive = "inactive"
)

// Media is one m-line of an offer.
type Media struct {
	Type      string // the m= media field as offered: "audio", "video", "application"…
	Kind      Kind
	Mid       string
	Direction string // DirSendRecv, DirSendOnly, DirRecvOnly or DirInactive
	RTCPMux   bool
	Desc      *sdp.MediaDescription
}

// Offer is a parsed offer. ICE credentials, fingerprint and setup come from
// the first m-line that carries them, else from the session level.
type Offer struct {
	SDP         *sdp.SessionDescription
	ICEUfrag    string
	ICEPwd      string
	Fingerprint string // "sha-256 AA:BB:…", "" if absent
	Setup       string // "actpass", "active", "passive" or ""
	Media       []Media
}

// ParseOffer parses an offer. SRS's parser is lenient, so ParseOffer is
// too: LF or CRLF line ends, a missing final line end, blank lines, and a
// session part without o=, s= or t= lines (as in the spec's curl check) are
// repaired before pion/sdp parses the text. Anything pion/sdp still cannot
// parse, an offer with no m-line, and an m-line without a token a=mid (or
// with a duplicate one) are ErrMalformed.
func ParseOffer(raw []byte) (o *Offer, err error) {
	defer func() {
		// pion/sdp is third-party code fed with network input: a panic in
		// it must cost this request a 400, not the process.
		if r := recover(); r != nil {
			o, err = nil, fmt.Errorf("%w: sdp parser panic: %v", ErrMalformed, r)
		}
	}()
	text, err := normalize(string(raw))
	if err != nil {
		return nil, err
	}
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(text); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no m-line", ErrMalformed)
	}
	o = &Offer{SDP: sd}
	if err := o.readMedia(); err != nil {
		return nil, err
	}
	o.readTransport()
	return o, nil
}

func (o *Offer) readMedia() error {
	seen := make(map[string]bool, len(o.SDP.MediaDescriptions))
	for i, md := range o.SDP.MediaDescriptions {
		mid, ok := md.Attribute("mid")
		if !ok || !isToken(mid) {
			return fmt.Errorf("%w: m-line %d has no valid a=mid", ErrMalformed, i)
		}
		if seen[mid] {
			return fmt.Errorf("%w: duplicate mid %q", ErrMalformed, mid)
		}
		seen[mid] = true
		m := Media{Type: md.MediaName.Media, Mid: mid, Direction: DirSendRecv, Desc: md}
		switch strings.ToLower(m.Type) {
		case "audio":
			m.Kind = KindAudio
		case "video":
			m.Kind = KindVideo
		default:
			m.Kind = KindOther
		}
		for _, a := range md.Attributes {
			switch a.Key {
			case DirSendRecv, DirSendOnly, DirRecvOnly, DirInactive:
				m.Direction = a.Key
			case "rtcp-mux":
				m.RTCPMux = true
			}
		}
		o.Media = append(o.Media, m)
	}
	return nil
}

// readTransport fills the ICE credentials, fingerprint and setup role:
// media level first (browsers repeat them on every m-line), then session
// level (OBS puts ice-ufrag/pwd there, SRS #3581).
func (o *Offer) readTransport() {
	get := func(key string) string {
		for _, m := range o.Media {
			if v, ok := m.Desc.Attribute(key); ok && v != "" {
				return strings.TrimSpace(v)
			}
		}
		v, _ := o.SDP.Attribute(key)
		return strings.TrimSpace(v)
	}
	o.ICEUfrag = get("ice-ufrag")
	o.ICEPwd = get("ice-pwd")
	o.Fingerprint = get("fingerprint")
	o.Setup = strings.ToLower(get("setup"))
}

// isToken reports whether s is a non-empty RFC 4566 token (the grammar of a
// mid, RFC 5888 §4), so it can be echoed into the answer verbatim.
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// normalize rewrites the offer text into the strict line order pion/sdp
// expects: CRLF line ends, no blank lines, and a session part of
// v=, o=, s=, [i u e p c b], t= [r], [z k a]. Missing o=, s= and t= lines
// get neutral defaults; media sections are passed through unchanged.
func normalize(text string) (string, error) {
	lines := strings.Split(text, "\n")
	var sess, media []string
	inMedia := false
	for _, l := range lines {
		l = strings.TrimRight(l, "\r \t")
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' {
			return "", fmt.Errorf("%w: bad line %q", ErrMalformed, truncate(l))
		}
		if l[0] == 'm' {
			inMedia = true
		}
		if inMedia {
			media = append(media, l)
		} else {
			sess = append(sess, l)
		}
	}
	if len(sess) == 0 || sess[0][0] != 'v' {
		return "", fmt.Errorf("%w: first line is not v=", ErrMalformed)
	}
	var b strings.Builder
	b.Grow(len(text) + 64)
	writeSession(&b, sess)
	for _, l := range media {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String(), nil
}

func writeSession(b *strings.Builder, sess []string) {
	pick := func(types string) []string {
		var out []string
		for _, l := range sess[1:] {
			if strings.IndexByte(types, l[0]) >= 0 {
				out = append(out, l)
			}
		}
		return out
	}
	groups := []struct {
		types string
		def   string
	}{
		{"o", "o=- 0 0 IN IP4 0.0.0.0"},
		{"s", "s=-"},
		{"iuepcb", ""},
		{"tr", "t=0 0"},
		{"zka", ""},
	}
	b.WriteString(sess[0])
	b.WriteString("\r\n")
	known := ""
	for _, g := range groups {
		known += g.types
		ls := pick(g.types)
		if len(ls) == 0 && g.def != "" {
			ls = []string{g.def}
		}
		if g.types == "tr" && len(ls) > 0 && ls[0][0] != 't' {
			ls = append([]string{g.def}, ls...)
		}
		for _, l := range ls {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	// Unknown session-level line types are kept (at the end of the session
	// part) so that pion/sdp rejects them rather than us hiding them.
	for _, l := range sess[1:] {
		if strings.IndexByte(known, l[0]) < 0 {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
