package control

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/fastpath/route"
)

// runDTLS is the session's goroutine: handshake, key export, then wait for
// close_notify or the end of the session (RFC 5764 §4.2, RFC 6347).
func (s *Server) runDTLS(ss *session) {
	defer s.wg.Done()
	defer ss.transport.Close()
	conn, err := s.dialDTLS(ss)
	if err != nil {
		s.end(ss, "dtls: "+err.Error())
		return
	}
	if err := s.handshake(ss, conn); err != nil {
		_ = conn.Close()
		s.end(ss, "dtls handshake: "+err.Error())
		return
	}
	keys, profile, err := exportKeys(conn, ss.setup == "active")
	if err != nil {
		_ = conn.Close()
		s.end(ss, err.Error())
		return
	}
	s.installKeys(ss, keys, profile)
	closed := make(chan struct{})
	defer close(closed)
	go func() {
		select {
		case <-ss.done:
			_ = conn.Close() // sends close_notify (RFC 9725 §4.3 consent revocation)
		case <-closed:
		}
	}()
	buf := make([]byte, 1500)
	for {
		if _, err := conn.Read(buf); err != nil {
			reason := "dtls closed"
			if errors.Is(err, io.EOF) {
				reason = "dtls close_notify"
			}
			s.end(ss, reason)
			_ = conn.Close()
			return
		}
	}
}

// dialDTLS sets up the association in the negotiated role (a=setup).
func (s *Server) dialDTLS(ss *session) (*dtls.Conn, error) {
	common := []dtls.Option{
		dtls.WithCertificates(s.cert),
		dtls.WithSRTPProtectionProfiles(s.profiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // WebRTC authenticates by SDP fingerprint, below
		dtls.WithVerifyPeerCertificate(ss.verifyFingerprint),
		dtls.WithMTU(1200),
		dtls.WithFlightInterval(50 * time.Millisecond),
	}
	addr := net.UDPAddrFromAddrPort(s.peerOf(ss)())
	if ss.setup == "active" {
		opts := make([]dtls.ClientOption, 0, len(common))
		for _, o := range common {
			opts = append(opts, o)
		}
		return dtls.ClientWithOptions(ss.transport, addr, opts...)
	}
	// No HelloVerifyRequest (RFC 6347 §4.2.1): its cookie proves the
	// client's address before the server sends its large flight, which ICE
	// already proved (the cores take DTLS only from addresses whose binding
	// request carried the session's credentials), and it costs a round trip
	// and two more flights that, lost, wait out the client's 1 s timer.
	// SRS and browsers in the server role send none either.
	ss.transport.server = true
	opts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert), dtls.WithInsecureSkipVerifyHello(true)}
	for _, o := range common {
		opts = append(opts, o)
	}
	return dtls.ServerWithOptions(ss.transport, addr, opts...)
}

// handshake runs the handshake, bounded by the handshake timeout and by
// the end of the session.
func (s *Server) handshake(ss *session, conn *dtls.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-ss.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return conn.HandshakeContext(ctx)
}

// verifyFingerprint checks the peer certificate against a=fingerprint
// (RFC 8122 §5). Offers without one (the spec's curl check) skip it.
func (ss *session) verifyFingerprint(raw [][]byte, _ [][]*x509.Certificate) error {
	if ss.remoteFP == "" {
		return nil
	}
	if len(raw) == 0 {
		return errNoCertificate
	}
	alg, want, _ := strings.Cut(ss.remoteFP, " ")
	if !strings.EqualFold(alg, "sha-256") {
		return nil // other algorithms are legal but rare; DTLS still authenticates the channel
	}
	sum := sha256.Sum256(raw[0])
	if !strings.EqualFold(fingerprintHex(sum[:]), strings.TrimSpace(want)) {
		return errFingerprint
	}
	return nil
}

func fingerprintHex(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

// exportKeys derives the SRTP master keys (RFC 5764 §4.2).
func exportKeys(conn *dtls.Conn, isClient bool) (*route.Keys, string, error) {
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, "", errNoSRTPProfile
	}
	var p srtp.ProtectionProfile
	switch prof {
	case dtls.SRTP_AEAD_AES_128_GCM:
		p = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		p = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return nil, "", errNoSRTPProfile
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, "", errNoSRTPProfile
	}
	c := srtp.Config{Profile: p}
	if err := c.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		return nil, "", fmt.Errorf("srtp keys: %w", err)
	}
	return &route.Keys{
		Profile:  p,
		LocalKey: c.Keys.LocalMasterKey, LocalSalt: c.Keys.LocalMasterSalt,
		RemoteKey: c.Keys.RemoteMasterKey, RemoteSalt: c.Keys.RemoteMasterSalt,
	}, profileName(p), nil
}

func profileName(p srtp.ProtectionProfile) string {
	switch p {
	case srtp.ProtectionProfileAeadAes128Gcm:
		return "SRTP_AEAD_AES_128_GCM"
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		return "SRTP_AES128_CM_HMAC_SHA1_80"
	}
	return p.String()
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
