package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// Media kinds of payload types in an answer.
const (
	kindNone  = 0
	kindAudio = 1
	kindVideo = 2
)

// identity is the DTLS certificate all subscribers of a run share.
type identity struct {
	cert        tls.Certificate
	fingerprint string // sha-256, upper-case hex with colons
}

func newIdentity() (*identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fanout-bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("identity cert: %w", err)
	}
	return &identity{
		cert:        tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		fingerprint: fingerprintOf(der),
	}, nil
}

func fingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// randToken returns n random characters from the ICE char set (RFC 8445 §5.3).
func randToken(n int) string {
	const set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = set[int(b[i])%len(set)]
	}
	return string(b)
}

// buildOffer returns a recvonly audio+video offer (RFC 8829 shape) for a
// bench subscriber that is the DTLS client (a=setup:active) and has one
// host candidate.
func buildOffer(ufrag, pwd, fingerprint string, host netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", time.Now().UnixNano())
	b.WriteString("a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n")
	media := func(mid, kind, fmts string, lines []string) {
		fmt.Fprintf(&b, "m=%s 9 UDP/TLS/RTP/SAVPF %s\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n", kind, fmts)
		fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\n", ufrag, pwd, fingerprint)
		fmt.Fprintf(&b, "a=setup:active\r\na=mid:%s\r\na=recvonly\r\na=rtcp-mux\r\n", mid)
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		if mid == "0" && host.IsValid() {
			fmt.Fprintf(&b, "a=candidate:1 1 udp 2130706431 %s %d typ host\r\n", host.Addr(), host.Port())
		}
		b.WriteString("a=end-of-candidates\r\n")
	}
	media("0", "audio", "111", []string{
		"a=rtpmap:111 opus/48000/2",
		"a=fmtp:111 minptime=10;useinbandfec=1",
	})
	media("1", "video", "102 104", []string{
		"a=rtpmap:102 H264/90000",
		"a=rtcp-fb:102 nack",
		"a=rtcp-fb:102 nack pli",
		"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"a=rtpmap:104 H264/90000",
		"a=rtcp-fb:104 nack",
		"a=rtcp-fb:104 nack pli",
		"a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
	})
	return b.String()
}

// answerInfo is what a bench subscriber needs from a WHEP answer.
type answerInfo struct {
	ufrag, pwd  string
	fingerprint string // sha-256 value, upper-case, or "" when absent
	candidate   netip.AddrPort
	ptKind      [128]uint8
}

// parseAnswer extracts ICE credentials, the DTLS fingerprint, the preferred
// UDP candidate (127.0.0.1 first) and the payload-type kinds.
func parseAnswer(raw string) (*answerInfo, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("answer sdp: %w", err)
	}
	ai := &answerInfo{}
	var cands []netip.AddrPort
	scan := func(attrs []sdp.Attribute) {
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				ai.ufrag = a.Value
			case "ice-pwd":
				ai.pwd = a.Value
			case "fingerprint":
				if alg, v, ok := strings.Cut(a.Value, " "); ok && strings.EqualFold(alg, "sha-256") {
					ai.fingerprint = strings.ToUpper(strings.TrimSpace(v))
				}
			case "candidate":
				if ap, ok := parseCandidate(a.Value); ok {
					cands = append(cands, ap)
				}
			}
		}
	}
	scan(sd.Attributes)
	for _, m := range sd.MediaDescriptions {
		scan(m.Attributes)
		kind := uint8(kindNone)
		switch m.MediaName.Media {
		case "audio":
			kind = kindAudio
		case "video":
			kind = kindVideo
		}
		for _, f := range m.MediaName.Formats {
			if pt, err := strconv.Atoi(f); err == nil && pt >= 0 && pt < 128 {
				ai.ptKind[pt] = kind
			}
		}
	}
	if ai.ufrag == "" || ai.pwd == "" {
		return nil, ErrNoICE
	}
	ai.candidate = pickCandidate(cands)
	if !ai.candidate.IsValid() {
		return nil, ErrNoCandidate
	}
	return ai, nil
}

// pickCandidate prefers 127.0.0.1, then any IPv4, then the first.
func pickCandidate(cands []netip.AddrPort) netip.AddrPort {
	for _, c := range cands {
		if c.Addr() == netip.MustParseAddr("127.0.0.1") {
			return c
		}
	}
	for _, c := range cands {
		if c.Addr().Is4() {
			return c
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return netip.AddrPort{}
}

// parseCandidate parses "foundation component transport priority ip port
// typ type ..." (RFC 8839 §5.1) and keeps UDP, component 1.
func parseCandidate(v string) (netip.AddrPort, bool) {
	f := strings.Fields(strings.TrimPrefix(v, "candidate:"))
	if len(f) < 8 || !strings.EqualFold(f[2], "udp") || f[1] != "1" {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(f[4])
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(f[5], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}

// postSDP sends an offer to a WHIP/WHEP endpoint (RFC 9725 §4.2) and
// returns the answer and the absolute resource URL from Location.
func postSDP(ctx context.Context, hc *http.Client, endpoint, token, offer string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", fmt.Errorf("sdp post: %w", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Accept", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("sdp post: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("sdp post body: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%w: %d %s", ErrHTTPStatus, resp.StatusCode, bytes.TrimSpace(body))
	}
	loc := resp.Header.Get("Location")
	if loc != "" {
		if base, err := url.Parse(endpoint); err == nil {
			if u, err := base.Parse(loc); err == nil {
				loc = u.String()
			}
		}
	}
	return string(body), loc, nil
}

// deleteResource ends a WHIP/WHEP session (RFC 9725 §4.2); errors are ignored.
func deleteResource(hc *http.Client, resource, token string) {
	if resource == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, resource, nil)
	if err != nil {
		return
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if resp, err := hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
