package node

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/stun/v4"

	"github.com/fanout/fanout/conf"
)

// TestDTLSMalformed: a handshake message whose length field is wrong gets
// a fatal alert within 100 ms and ends the session at once, as SRS does,
// instead of waiting out stun_timeout. A real pion/dtls client does the
// handshake through a socket that corrupts one message: (a) its first
// ClientHello, (b) its Certificate, after the server's whole flight 4.
func TestDTLSMalformed(t *testing.T) {
	cfg, err := conf.Parse("test.conf", []byte(testConfig), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv, err := start(cfg, slog.New(slog.NewTextHandler(&logs, nil)), Options{APIListen: "127.0.0.1:0",
		RTCListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, c := range []struct {
		name string
		typ  uint8 // handshake msg_type to corrupt (RFC 5246 §7.4)
	}{{"client_hello", 1}, {"certificate", 11}} {
		t.Run(c.name, func(t *testing.T) { runDTLSMalformed(t, srv, &logs, c.name, c.typ) })
	}
}

// runDTLSMalformed publishes by WHIP, binds by STUN, and runs the
// handshake with message typ corrupted.
func runDTLSMalformed(t *testing.T, srv *Server, logs *lockedBuffer, name string, typ uint8) {
	stream := "dtls-bad-" + name
	ufrag, pwd := "bad"+strings.ReplaceAll(name, "_", ""), "dtlsmalformedpassword0123"
	// a=setup:active: this client is the DTLS client (to an actpass
	// offer without a browser's o= line Fanout would answer active).
	code, _, body := post(t, srv.url("/rtc/v1/whip/?app=live&stream="+stream+"&ice-ufrag="+ufrag+"&ice-pwd="+pwd),
		"application/sdp", strings.ReplaceAll(curlOffer, "a=setup:actpass", "a=setup:active"))
	if code != http.StatusCreated {
		t.Fatalf("WHIP: %d %s", code, body)
	}
	if !dtlsClientListed(t, srv, stream) {
		t.Fatal("the new session is not in /api/v1/clients")
	}
	sock := bindSTUN(t, srv, ufrag+":J8X7", pwd)
	bad := &corrupting{UDPConn: sock, typ: typ, alerts: make(chan alertSeen, 4)}
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- dtlsHandshake(bad, sock.RemoteAddr()) }()
	var clientErr error
	waited := false
	wait := func() { // the client gives up at the alert, at the latest after 5 s
		if !waited {
			clientErr, waited = <-done, true
		}
	}
	defer wait()
	var a alertSeen
	select {
	case a = <-bad.alerts:
	case <-time.After(5 * time.Second):
		t.Fatalf("no alert 5 s after the handshake began (corrupted at %v)", bad.corruptedAt())
	}
	sentAt := bad.corruptedAt()
	if sentAt.IsZero() {
		t.Fatal("an alert came before the corrupt message went out")
	}
	if d := a.at.Sub(sentAt); d > 100*time.Millisecond {
		t.Errorf("alert %v after the corrupt message, want ≤ 100 ms", d)
	}
	if a.level != 2 || a.desc != 50 {
		t.Errorf("alert level %d description %d, want fatal(2) decode_error(50)", a.level, a.desc)
	}
	waitClientGone(t, srv, stream, time.Second)
	// The client read it as an alert: its sequence number was past
	// the server's flight (replay protection, RFC 6347 §4.1.2.6).
	if wait(); clientErr == nil || !strings.Contains(clientErr.Error(), "DecodeError") {
		t.Errorf("the pion client did not fail on the alert: %v", clientErr)
	}
	t.Logf("alert %v after the corrupt message, session gone %v after the handshake began",
		a.at.Sub(sentAt).Round(time.Microsecond), time.Since(began).Round(time.Millisecond))
	if line := sessionEndLine(logs, stream); !strings.Contains(line, `reason="dtls malformed: `+name) {
		t.Errorf("summary line does not say why: %s", line)
	}
}

// waitClientGone waits until /api/v1/clients no longer lists stream.
func waitClientGone(t testing.TB, srv *Server, stream string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for dtlsClientListed(t, srv, stream) {
		if time.Now().After(deadline) {
			t.Fatalf("the session is still listed %v after the alert (stun_timeout is 30 s)", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionEndLine is the last session summary line of stream.
func sessionEndLine(logs *lockedBuffer, stream string) string {
	return waitLogLine(logs, func(l string) bool { return strings.Contains(l, "/"+stream) })
}

// waitLogLine is the last "session end" line that match accepts, waiting
// up to 1 s for one: control logs it just after the session has left the
// session list and /api/v1/clients (its end runs the hooks first).
func waitLogLine(logs *lockedBuffer, match func(string) bool) string {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `msg="session end"`) && match(l) {
				line = l
			}
		}
		if line != "" || time.Now().After(deadline) {
			return line
		}
	}
}

// dtlsClientListed reports whether /api/v1/clients lists a client of stream.
func dtlsClientListed(t testing.TB, srv *Server, stream string) bool {
	t.Helper()
	var clients struct{ Clients []struct{ Name string } }
	getJSON(t, srv.url("/api/v1/clients/"), &clients)
	for _, c := range clients.Clients {
		if c.Name == stream {
			return true
		}
	}
	return false
}

// bindSTUN connects a UDP socket to the media port and makes it the
// session's address with a signed Binding Request (RFC 8445 §7.2.2).
func bindSTUN(t testing.TB, srv *Server, user, pwd string) *net.UDPConn {
	t.Helper()
	sock, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.fp.Port()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sock.Close() })
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
		stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sock.Write(m.Raw); err != nil {
		t.Fatal(err)
	}
	_ = sock.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("no STUN answer: %v", err)
	}
	resp := &stun.Message{Raw: buf[:n]}
	if err := resp.Decode(); err != nil || resp.Type != stun.BindingSuccess {
		t.Fatalf("not a binding success: %v %v", err, resp)
	}
	_ = sock.SetReadDeadline(time.Time{})
	return sock
}

// dtlsHandshake runs a pion/dtls client (with a certificate, as WebRTC
// peers have) until the handshake fails or times out.
func dtlsHandshake(conn net.PacketConn, to net.Addr) error {
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		return err
	}
	cli, err := dtls.ClientWithOptions(conn, to, dtls.WithCertificates(cert), dtls.WithInsecureSkipVerify(true),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cli.HandshakeContext(ctx) // fails: the server alerts
	_ = cli.Close()
	return err
}

// alertSeen is an alert record read from the server.
type alertSeen struct {
	at          time.Time
	level, desc byte
}

// corrupting is the client's socket: it adds 16 to the length field of
// every handshake message of type typ it sends (so the message claims
// bytes it does not have), and reports the alerts it receives.
type corrupting struct {
	*net.UDPConn
	typ    uint8
	alerts chan alertSeen

	mu   sync.Mutex
	sent time.Time // first corrupted datagram
}

func (c *corrupting) corruptedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

func (c *corrupting) WriteTo(p []byte, _ net.Addr) (int, error) {
	d := append([]byte(nil), p...)
	hit := false
	for at := 0; at+13+12 <= len(d); at += 13 + (int(d[at+11])<<8 | int(d[at+12])) {
		h := d[at+13:]
		epoch0 := d[at+3] == 0 && d[at+4] == 0
		if d[at] == 22 && epoch0 && h[0] == c.typ && h[6]|h[7]|h[8] == 0 { // RFC 6347 §4.2.2 first fragment
			l := (int(h[1])<<16 | int(h[2])<<8 | int(h[3])) + 16
			h[1], h[2], h[3] = byte(l>>16), byte(l>>8), byte(l)
			hit = true
		}
	}
	if hit {
		c.mu.Lock()
		if c.sent.IsZero() {
			c.sent = time.Now()
		}
		c.mu.Unlock()
	}
	if _, err := c.Write(d); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *corrupting) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, err := c.Read(p)
		if err != nil {
			return n, nil, err
		}
		if n > 0 && p[0] < 4 {
			continue // a STUN answer (RFC 7983)
		}
		for at := 0; at+15 <= n; at += 13 + (int(p[at+11])<<8 | int(p[at+12])) {
			if p[at] == 21 && p[at+3] == 0 && p[at+4] == 0 { // a plaintext alert record
				select {
				case c.alerts <- alertSeen{at: time.Now(), level: p[at+13], desc: p[at+14]}:
				default:
				}
			}
		}
		return n, c.RemoteAddr(), nil
	}
}
