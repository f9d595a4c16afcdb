package sdpneg

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Candidate is one server ICE candidate. It has the same fields as
// candidate.Candidate, so control converts with sdpneg.Candidate(c).
type Candidate struct {
	Host  string // IP literal (IPv6 without brackets) or, with keep_api_domain, a DNS name
	Port  int
	Proto string // "udp" or "tcp"
}

// AnswerParams are the server-side values of an answer.
type AnswerParams struct {
	Ufrag, Pwd  string
	Fingerprint string // "sha-256 AA:BB:…"
	Setup       string // "passive" or "active" ("" = passive), see ChooseSetup
	Candidates  []Candidate
	Play        bool
	SessionName string // s= line; "" = FanoutPublishSession / FanoutPlaySession
	StreamID    string // "app/stream", for msid-semantic and play msid
	SSRCs       map[Kind]uint32
	CNAME       string // play a=ssrc cname; "" = "fanout"
}

// candidatePriority is SRS's constant host priority (126<<24 | 65535<<8 | 255).
const candidatePriority = 2130706431

// BuildAnswer writes the answer for n in SRS's shape (srs-reference §1.9):
// ICE-lite, BUNDLE of the offer's mids in offer order, one PT per m-line,
// rtcp-mux and rtcp-mux-only (RFC 9725 §4.2), transport-cc as the only
// extmap besides simulcast's and AV1's dependency descriptor (with
// a=extmap-allow-mixed), every candidate on every m-line, CRLF line ends.
func BuildAnswer(n *Negotiated, p AnswerParams) ([]byte, error) {
	if n == nil || len(n.lines) == 0 {
		return nil, fmt.Errorf("%w: empty negotiation", ErrAnswerParams)
	}
	if err := checkParams(n, &p); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.Grow(1024 + 512*len(n.lines))
	w := func(parts ...string) {
		for _, s := range parts {
			b.WriteString(s)
		}
		b.WriteString("\r\n")
	}
	mids := make([]string, len(n.lines))
	for i, l := range n.lines {
		mids[i] = l.mid
	}
	w("v=0")
	w("o=Fanout ", strconv.FormatUint(rand.Uint64()>>1, 10), " 2 IN IP4 0.0.0.0")
	w("s=", p.SessionName)
	w("t=0 0")
	w("a=ice-lite")
	w("a=group:BUNDLE ", strings.Join(mids, " "))
	if p.StreamID != "" {
		w("a=msid-semantic: WMS ", p.StreamID)
	} else {
		w("a=msid-semantic: WMS")
	}
	if n.mixed {
		w("a=", AllowMixedAttr)
	}
	for i := range n.lines {
		writeLine(w, &n.lines[i], &p)
	}
	return []byte(b.String()), nil
}

func writeLine(w func(...string), l *line, p *AnswerParams) {
	pt := strconv.Itoa(int(l.codec.PT))
	w("m=", l.kind.String(), " 9 UDP/TLS/RTP/SAVPF ", pt)
	w("c=IN IP4 0.0.0.0")
	w("a=ice-ufrag:", p.Ufrag)
	w("a=ice-pwd:", p.Pwd)
	w("a=fingerprint:", p.Fingerprint)
	w("a=setup:", p.Setup)
	w("a=mid:", l.mid)
	if l.twcc != 0 {
		w("a=extmap:", strconv.Itoa(int(l.twcc)), " ", TWCCURI)
	}
	if l.dd != 0 {
		w("a=extmap:", strconv.Itoa(int(l.dd)), " ", DDURI)
	}
	if l.sim != nil {
		writeSimulcast(w, l.sim)
	}
	w("a=", l.dir)
	w("a=rtcp-mux")
	w("a=rtcp-mux-only")
	w("a=rtcp-rsize")
	rtpmap := l.encoding + "/" + strconv.FormatUint(uint64(l.codec.ClockRate), 10)
	if l.codec.Channels > 1 {
		rtpmap += "/" + strconv.Itoa(int(l.codec.Channels))
	}
	w("a=rtpmap:", pt, " ", rtpmap)
	for _, fb := range l.codec.Feedback {
		w("a=rtcp-fb:", pt, " ", fb)
	}
	if l.codec.Fmtp != "" {
		w("a=fmtp:", pt, " ", l.codec.Fmtp)
	}
	if l.sim != nil {
		writeRIDs(w, l.sim)
	}
	if ssrc := p.SSRCs[l.kind]; p.Play && l.dir == DirSendOnly && ssrc != 0 {
		s := strconv.FormatUint(uint64(ssrc), 10)
		stream := p.StreamID
		if stream == "" {
			stream = "-" // RFC 8830 §2: no MediaStream
		}
		msid := stream + " " + l.kind.String() + "-" + s
		w("a=msid:", msid)
		w("a=ssrc:", s, " cname:", p.CNAME)
		w("a=ssrc:", s, " msid:", msid)
	}
	for i, c := range p.Candidates {
		n := strconv.Itoa(i)
		port := strconv.Itoa(c.Port)
		if strings.EqualFold(c.Proto, "tcp") {
			w("a=candidate:", n, " 1 tcp ", strconv.Itoa(candidatePriority), " ", c.Host, " ", port,
				" typ host tcptype passive")
		} else {
			w("a=candidate:", n, " 1 udp ", strconv.Itoa(candidatePriority), " ", c.Host, " ", port,
				" typ host generation 0")
		}
	}
}

// checkParams fills defaults and rejects values that would corrupt the
// answer's line or token structure.
func checkParams(n *Negotiated, p *AnswerParams) error {
	if p.Play != n.Play {
		return fmt.Errorf("%w: Play=%v for a Play=%v negotiation", ErrAnswerParams, p.Play, n.Play)
	}
	if p.SessionName == "" {
		p.SessionName = "FanoutPublishSession"
		if p.Play {
			p.SessionName = "FanoutPlaySession"
		}
	}
	if p.CNAME == "" {
		p.CNAME = "fanout"
	}
	p.Setup = strings.ToLower(p.Setup)
	if p.Setup == "" {
		p.Setup = "passive"
	}
	if p.Setup != "passive" && p.Setup != "active" {
		return fmt.Errorf("%w: setup %q", ErrAnswerParams, p.Setup)
	}
	fields := []struct {
		name, v string
		ok      bool
	}{
		{"ufrag", p.Ufrag, isField(p.Ufrag)},
		{"pwd", p.Pwd, isField(p.Pwd)},
		{"cname", p.CNAME, isField(p.CNAME)},
		{"stream id", p.StreamID, p.StreamID == "" || isField(p.StreamID)},
		{"fingerprint", p.Fingerprint, isFingerprint(p.Fingerprint)},
		{"session name", p.SessionName, !strings.ContainsAny(p.SessionName, "\r\n")},
	}
	for _, f := range fields {
		if !f.ok {
			return fmt.Errorf("%w: bad %s %q", ErrAnswerParams, f.name, f.v)
		}
	}
	for _, c := range p.Candidates {
		proto := strings.ToLower(c.Proto)
		if !isHost(c.Host) || c.Port <= 0 || c.Port > 65535 || (proto != "udp" && proto != "tcp") {
			return fmt.Errorf("%w: bad candidate %+v", ErrAnswerParams, c)
		}
	}
	return nil
}

// isField reports a non-empty run of visible ASCII: it cannot end a line
// or split an SDP field.
func isField(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isFingerprint accepts "<hash-func> <fingerprint>" (RFC 8122 §5).
func isFingerprint(s string) bool {
	alg, fp, ok := strings.Cut(s, " ")
	return ok && isField(alg) && isField(fp)
}

// isHost accepts an IP literal or DNS name: letters, digits, '.', '-',
// '_' and ':' (IPv6); nothing that could end a line or split a field.
func isHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

// ChooseSetup returns the answer's a=setup for the offer's (SRS rule,
// RFC 5763 §5): actpass → dtlsRole ("passive" unless it is "active"),
// active → passive, passive → active, absent → passive.
func ChooseSetup(offerSetup, dtlsRole string) string {
	switch strings.ToLower(strings.TrimSpace(offerSetup)) {
	case "actpass":
		if strings.EqualFold(dtlsRole, "active") {
			return "active"
		}
		return "passive"
	case "passive":
		return "active"
	}
	return "passive"
}

// RoleAuto is Fanout's default dtls_role: SetupFor resolves it per offer.
const RoleAuto = "auto"

// SetupFor is ChooseSetup for an offer, with dtlsRole RoleAuto resolved:
// active (Fanout the DTLS client), unless the offer comes from a browser,
// then passive. As the DTLS client Fanout's 50 ms flight timer recovers
// every lost flight (RFC 6347 §4.2.4), where as the server it recovers
// only its own two and a lost ClientHello, client Finished or server
// Finished waits out the peer's timer (1 s in pion, OpenSSL, so aiortc and
// GStreamer). Browsers are the exception: as DTLS servers they pick the
// SRTP profile from their own list, and libwebrtc puts
// AES_CM_128_HMAC_SHA1_80 (≈6× the per-packet CPU of GCM here) before GCM,
// while as DTLS clients they accept the GCM Fanout lists first; and they
// retransmit their own flights fast. A browser mistaken for another stack
// (or the reverse) still connects, in the other role.
func SetupFor(o *Offer, dtlsRole string) string {
	if strings.EqualFold(dtlsRole, RoleAuto) {
		dtlsRole = "active"
		if o.Browser() {
			dtlsRole = "passive"
		}
	}
	return ChooseSetup(o.Setup, dtlsRole)
}

// Browser reports whether the offer's o= line is a browser's: libwebrtc
// (Chromium, Safari, Edge and native libwebrtc apps) always writes
// "o=- <id> <version> IN IP4 127.0.0.1", Firefox "o=mozilla...THIS_IS_SDPARTA…".
// pion, aiortc and GStreamer write 0.0.0.0, libdatachannel the user "rtc".
func (o *Offer) Browser() bool {
	if o == nil || o.SDP == nil {
		return false
	}
	or := o.SDP.Origin
	if strings.HasPrefix(or.Username, "mozilla") {
		return true
	}
	return or.Username == "-" && or.UnicastAddress == "127.0.0.1"
}
