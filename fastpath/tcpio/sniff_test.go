package tcpio

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	stunReq := framed(bindingRequest(t, "a:b"))
	tests := []struct {
		name string
		head []byte
		want sniffVerdict
	}{
		{"stun binding request", stunReq[:10], sniffWebRTC},
		{"stun, more bytes", stunReq, sniffWebRTC},
		{"stun, 9 bytes", stunReq[:9], sniffMore},
		{"empty", nil, sniffMore},
		{"http get", []byte("GET / HTTP/1.1\r\n"), sniffOther},
		{"http, 3 bytes", []byte("GET"), sniffOther},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03}, sniffOther},
		{"length mismatch", append([]byte{0x00, 0x30}, stunReq[2:10]...), sniffOther},
		{"binding response", []byte{0, 68, 1, 1, 0, 48, 0x21, 0x12, 0xa4, 0x42}, sniffOther},
		{"bad cookie", []byte{0, 68, 0, 1, 0, 48, 0x21, 0x12, 0xa4, 0x43}, sniffOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.head); got != tt.want {
				t.Fatalf("classify(% x) = %d, want %d", tt.head, got, tt.want)
			}
		})
	}
}

// TestSniffSharedPort serves an HTTP GET, an HTTPS request and WebRTC over TCP
// (STUN in, frames both ways) on one port, with and without a dedicated
// ICE-TCP listener (the two ways Enroll reaches gnet).
func TestSniffSharedPort(t *testing.T) {
	for _, mode := range []struct{ name, listen string }{{"enroll-only", ""}, {"with-listener", "127.0.0.1:0"}} {
		t.Run(mode.name, func(t *testing.T) {
			checkLeaks(t)
			sink := newRecSink()
			s := startRaw(t, Config{Listen: mode.listen, Loops: 2}, sink)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			cert := selfSigned(t)
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, "hello "+map[bool]string{true: "https", false: "http"}[r.TLS != nil])
				}),
				ReadHeaderTimeout: 5 * time.Second,
			}
			sniffed := Sniff(ln, s)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(tlsOrPlain{sniffed, &tls.Config{Certificates: []tls.Certificate{cert}}}) }()
			t.Cleanup(func() {
				_ = srv.Close() // closes the sniffed listener, which closes ln
				if err := <-done; err != http.ErrServerClosed {
					t.Errorf("Serve: %v", err)
				}
			})

			// WebRTC over TCP first, so its connection is open while HTTP(S) runs.
			c, peer := dial(t, mustAddrPort(t, addr), sink)
			mustWrite(t, c, framed(payload(300, 1), payload(1200, 2)))
			sink.wait(t, "frames via the shared port", func() bool { return len(sink.frames[peer]) == 3 })
			if !s.Write(peer, payload(500, 3)) {
				t.Fatal("Write refused")
			}
			s.Flush()
			if got := readFrames(t, c, 1)[0]; !bytes.Equal(got, payload(500, 3)) {
				t.Fatal("frame back differs")
			}

			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test: self-signed
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for _, u := range []string{"http://" + addr + "/", "https://" + addr + "/"} {
				resp, err := cl.Get(u)
				if err != nil {
					t.Fatalf("GET %s: %v", u, err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if want := "hello " + u[:len(u)-len("://"+addr+"/")]; string(body) != want {
					t.Fatalf("GET %s = %q, want %q", u, body, want)
				}
			}
			// HTTP(S) never reached the ICE-TCP side.
			waitStats(t, s, func(st Stats) bool { return st.ConnsTotal == 1 && st.FramesIn == 3 })
		})
	}
}

// TestSniffSilentAndEarlyClose: a client that closes before speaking, and one
// that sends only part of the 10-byte header, both end on the HTTP side.
func TestSniffSilentAndEarlyClose(t *testing.T) {
	checkLeaks(t)
	sink := newRecSink()
	s := startRaw(t, Config{Loops: 1}, sink)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := Sniff(ln, s)
	defer sl.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c1.Close()
	got, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = got.Close()

	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	mustWrite(t, c2, []byte{0, 60, 0, 1}) // could be STUN: the sniffer waits for more
	time.Sleep(50 * time.Millisecond)
	mustWrite(t, c2, []byte("xyzw")) // byte 6 rules it out
	got, err = sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	b := make([]byte, 8)
	if _, err := io.ReadFull(got, b); err != nil || !bytes.Equal(b, []byte{0, 60, 0, 1, 'x', 'y', 'z', 'w'}) {
		t.Fatalf("HTTP side read % x, %v: want the stream from byte 0", b, err)
	}
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

// tlsOrPlain is the test's HTTP side: TLS when the first byte is a TLS
// handshake record (0x16), plain HTTP otherwise, both on one listener.
type tlsOrPlain struct {
	net.Listener
	cfg *tls.Config
}

func (l tlsOrPlain) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if err == nil && first[0] == 0x16 {
		return tls.Server(pc, l.cfg), nil
	}
	return pc, nil
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
