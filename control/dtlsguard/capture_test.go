package dtlsguard

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
)

// recorder is a UDP socket that keeps a copy of every datagram written.
type recorder struct {
	net.PacketConn
	mu   sync.Mutex
	sent [][]byte
}

func (r *recorder) WriteTo(p []byte, a net.Addr) (int, error) {
	r.mu.Lock()
	r.sent = append(r.sent, append([]byte(nil), p...))
	r.mu.Unlock()
	return r.PacketConn.WriteTo(p, a)
}

func (r *recorder) datagrams() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.sent...)
}

// flights runs a real pion/dtls handshake over loopback UDP, the client
// with a certificate as WebRTC peers have, and returns every datagram each
// side sent (HelloVerifyRequest cookie exchange included).
func flights(t testing.TB, mtu int) (client, server [][]byte) {
	t.Helper()
	cc, sc := listenUDP(t), listenUDP(t)
	rc, rs := &recorder{PacketConn: cc}, &recorder{PacketConn: sc}
	certs := func() tls.Certificate {
		c, err := selfsign.GenerateSelfSigned()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	common := func(c tls.Certificate) []dtls.Option {
		return []dtls.Option{dtls.WithCertificates(c), dtls.WithInsecureSkipVerify(true), dtls.WithMTU(mtu),
			dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
			dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret)}
	}
	sopts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert)}
	for _, o := range common(certs()) {
		sopts = append(sopts, o)
	}
	var copts []dtls.ClientOption
	for _, o := range common(certs()) {
		copts = append(copts, o)
	}
	srv, err := dtls.ServerWithOptions(rs, cc.LocalAddr(), sopts...)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dtls.ClientWithOptions(rc, sc.LocalAddr(), copts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- srv.HandshakeContext(ctx) }()
	if err := cli.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	_ = cli.Close()
	_ = srv.Close()
	return rc.datagrams(), rs.datagrams()
}

func listenUDP(t testing.TB) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// find returns a copy of the first datagram holding a first fragment of a
// plaintext handshake message of type typ, and the offset of its
// handshake header.
func find(t testing.TB, ds [][]byte, typ uint8) ([]byte, int) {
	t.Helper()
	for _, d := range ds {
		for at := 0; at+RecordHeaderLen <= len(d); {
			n := int(d[at+11])<<8 | int(d[at+12])
			if d[at] == ContentHandshake && d[at+3] == 0 && d[at+4] == 0 && n >= HandshakeHeaderLen {
				h := d[at+RecordHeaderLen:]
				if h[0] == typ && uint24(h[6:]) == 0 {
					return append([]byte(nil), d...), at + RecordHeaderLen
				}
			}
			at += RecordHeaderLen + n
		}
	}
	t.Fatalf("no %s in the capture", HandshakeName(typ))
	return nil, 0
}

func put24(b []byte, v int) { b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v) }
