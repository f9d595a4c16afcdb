package control

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// session is one publisher or player: its ICE credentials, its DTLS
// association and what the route table needs to know of it. Fields after mu
// are guarded by Server.mu; the DTLS goroutine is the session's owner.
type session struct {
	id          route.SessionID
	role        route.Role
	stream      *stream
	localUfrag  string
	localPwd    string
	remoteUfrag string
	iceUser     string // "localUfrag:remoteUfrag" for the fastpath's STUN answers; "" = any remote ufrag
	token       string
	cid         string // client id for the API and hooks
	clientIP    string
	param       string // the request's query string, passed to hooks
	etag        string
	remoteFP    string // "sha-256 AA:BB…" from the offer, "" when absent
	setup       string // our DTLS role: "passive" (server) or "active" (client)
	nack        bool
	twccExt     uint8                  // publisher: negotiated transport-cc extension id, 0 = none
	codecs      [route.NumKinds]string // negotiated codec names, "" = no track
	desc        *sdpneg.StreamDesc     // publisher: what players negotiate against
	tracks      [route.NumKinds]route.Track
	created     time.Time
	lastSeen    atomic.Int64 // unix ns of the last STUN/DTLS datagram
	log         *slog.Logger
	transport   *dtlsTransport

	epoch   uint32
	addrs   []netip.AddrPort
	peer    netip.AddrPort
	keys    *route.Keys
	profile string
	started bool // DTLS goroutine launched
	// addrPending: a binding from a new address awaits the next table
	// (Server.replies); its answers wait too.
	addrPending bool
	ended       bool
	reason      string
	virtual     bool // rtmp_to_rtc publisher: no ICE, DTLS or peer (virtual.go)

	// Events bookkeeping (virtual.go), guarded by evMu.
	evMu       sync.Mutex
	readySent  bool
	goneSent   bool
	readyEpoch uint32

	done     chan struct{}
	doneOnce sync.Once
}

func (s *session) kind() string {
	if s.role == route.RolePublisher {
		return "publish"
	}
	return "play"
}

// currentPeer is the address DTLS records go to.
func (s *session) currentPeer(srv *Server) netip.AddrPort {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return s.peer
}

// runDTLS is the session's goroutine: handshake, key export, then wait for
// close_notify or the end of the session (RFC 5764 §4.2, RFC 6347).
func (srv *Server) runDTLS(s *session) {
	defer srv.wg.Done()
	defer s.transport.Close()
	common := []dtls.Option{
		dtls.WithCertificates(srv.cert),
		dtls.WithSRTPProtectionProfiles(srv.profiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // WebRTC authenticates by SDP fingerprint, below
		dtls.WithVerifyPeerCertificate(s.verifyFingerprint),
		dtls.WithMTU(1200),
		dtls.WithFlightInterval(100 * time.Millisecond),
	}
	addr := net.UDPAddrFromAddrPort(s.currentPeer(srv))
	var conn *dtls.Conn
	var err error
	if s.setup == "active" {
		opts := make([]dtls.ClientOption, 0, len(common))
		for _, o := range common {
			opts = append(opts, o)
		}
		conn, err = dtls.ClientWithOptions(s.transport, addr, opts...)
	} else {
		opts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert)}
		for _, o := range common {
			opts = append(opts, o)
		}
		conn, err = dtls.ServerWithOptions(s.transport, addr, opts...)
	}
	if err != nil {
		srv.end(s, "dtls: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), srv.handshakeTimeout)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = conn.Close()
		srv.end(s, "dtls handshake: "+err.Error())
		return
	}
	keys, profile, err := exportKeys(conn, s.setup == "active")
	if err != nil {
		_ = conn.Close()
		srv.end(s, err.Error())
		return
	}
	srv.installKeys(s, keys, profile)
	closed := make(chan struct{})
	defer close(closed)
	go func() {
		select {
		case <-s.done:
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
			srv.end(s, reason)
			_ = conn.Close()
			return
		}
	}
}

// verifyFingerprint checks the peer certificate against a=fingerprint
// (RFC 8122 §5). Offers without one (the spec's curl check) skip it.
func (s *session) verifyFingerprint(raw [][]byte, _ [][]*x509.Certificate) error {
	if s.remoteFP == "" {
		return nil
	}
	if len(raw) == 0 {
		return errNoCertificate
	}
	alg, want, _ := strings.Cut(s.remoteFP, " ")
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
