package bench

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"golang.org/x/sys/unix"
)

// Subscriber phases.
const (
	phaseICE   = 1 // STUN binding requests until a success response
	phaseDTLS  = 2 // DTLS handshake over handshakeConn
	phaseMedia = 3 // SRTP keys installed
)

// subKeys are a subscriber's SRTP contexts, installed once after DTLS.
type subKeys struct {
	dec *srtp.Context // server → bench (remote keys)
	enc *srtp.Context // bench → server, for RTCP NACK
}

// subscriber is one lightweight WHEP player. Fields above the line are set
// before the reader sees it or are atomic; the rest belong to the reader.
type subscriber struct {
	id                     int
	node                   int // index of its WHEP URL (Config.WHEPs)
	fd                     int
	remote                 netip.AddrPort
	ptKind                 [128]uint8
	localUfrag, localPwd   string
	remoteUfrag, remotePwd string
	resource               string
	phase                  atomic.Int32
	iceDone                chan struct{}
	hs                     atomic.Pointer[handshakeConn]
	keys                   atomic.Pointer[subKeys]
	startNs                int64
	connected              atomic.Int64 // ns on the bench clock, 0 until DTLS is done
	firstKeyframe          atomic.Int64
	sinkNow                atomic.Bool // -sink: switch even without a keyframe (set by sinkSubs)
	sunk                   atomic.Bool // -sink: switched, its socket out of the epoll set (set by the reader)

	// reader-owned
	streams [4]streamStat
	pkts    uint64
	kfSeen  bool
	iceSeen bool
	nextKA  int64
	stunMsg stun.Message
}

// wantsSink reports whether s is done with user-space reading and, with
// -sink, belongs on the sink: connected (SRTP keys, so the connect time is
// taken) and past its first keyframe (so the keyframe time is taken), or
// asked for by sinkSubs at the end of its step whatever it saw. Until then
// its reader must read it: STUN and DTLS answers, and the decrypted video
// in which the keyframe is found. It runs on the reader.
func (s *subscriber) wantsSink() bool {
	return s.sinkNow.Load() || s.kfSeen && s.phase.Load() == phaseMedia
}

// stream returns the accounting slot of ssrc, claiming a free one.
func (s *subscriber) stream(ssrc uint32, pt uint8) *streamStat {
	for i := range s.streams {
		st := &s.streams[i]
		if st.used && st.ssrc == ssrc {
			return st
		}
	}
	for i := range s.streams {
		st := &s.streams[i]
		if !st.used && st.clock == 0 {
			st.ssrc = ssrc
			st.clock = 90000
			if s.ptKind[pt] == kindAudio {
				st.clock = 48000
			}
			return st
		}
	}
	return &s.streams[len(s.streams)-1]
}

// onSTUN handles a STUN message on the reader: a binding success ends the
// ICE phase; a binding request from a full-ICE server gets a success answer.
func (s *subscriber) onSTUN(p []byte) {
	m := &s.stunMsg
	m.Raw = append(m.Raw[:0], p...)
	if m.Decode() != nil {
		return
	}
	switch m.Type {
	case stun.BindingSuccess:
		if !s.iceSeen {
			s.iceSeen = true
			close(s.iceDone)
		}
	case stun.BindingRequest:
		resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: s.remote.Addr().AsSlice(), Port: int(s.remote.Port())},
			stun.NewShortTermIntegrity(s.localPwd), stun.Fingerprint)
		if err == nil {
			_, _ = unix.Write(s.fd, resp.Raw)
		}
	}
}

// onDTLS passes a DTLS record to the handshake, if one is running.
func (s *subscriber) onDTLS(p []byte) {
	if hc := s.hs.Load(); hc != nil {
		hc.deliver(p)
	}
}

// rawAttr adds a STUN attribute with a fixed value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

// bindingRequest builds an ICE connectivity check (RFC 8445 §7.1.1) from the
// controlling side with USE-CANDIDATE.
func bindingRequest(remoteUfrag, localUfrag, remotePwd string) ([]byte, error) {
	prio := make([]byte, 4)
	binary.BigEndian.PutUint32(prio, 0x6e0001ff)
	tie := make([]byte, 8)
	binary.BigEndian.PutUint64(tie, uint64(time.Now().UnixNano()))
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(remoteUfrag+":"+localUfrag),
		rawAttr{stun.AttrPriority, prio},
		rawAttr{stun.AttrICEControlling, tie},
		rawAttr{stun.AttrUseCandidate, nil},
		stun.NewShortTermIntegrity(remotePwd), stun.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("stun request: %w", err)
	}
	return m.Raw, nil
}

func (s *subscriber) sendBinding() {
	if b, err := bindingRequest(s.remoteUfrag, s.localUfrag, s.remotePwd); err == nil {
		_, _ = unix.Write(s.fd, b)
	}
}

// connector connects subscribers; it is shared by all of a run's subscribers.
type connector struct {
	id      *identity
	hc      *http.Client
	whep    string
	token   string
	local   netip.Addr
	rcvbuf  int
	timeout time.Duration
	cand    netip.AddrPort // overrides the answer's candidate when valid
}

// connect runs one subscriber from offer to SRTP keys. The subscriber is
// registered with rd as soon as its socket is connected to the server.
func (c *connector) connect(ctx context.Context, s *subscriber, rd *reader) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s.startNs = monoNow()
	fd, port, err := udpSocket(c.local, c.rcvbuf)
	if err != nil {
		return err
	}
	s.fd = fd
	s.localUfrag, s.localPwd = randToken(8), randToken(24)
	offer := buildOffer(s.localUfrag, s.localPwd, c.id.fingerprint, netip.AddrPortFrom(c.local, port))
	answer, loc, err := postSDP(ctx, c.hc, c.whep, c.token, offer)
	if err != nil {
		return err
	}
	s.resource = loc
	ai, err := parseAnswer(answer)
	if err != nil {
		return err
	}
	if c.cand.IsValid() {
		ai.candidate = c.cand
	}
	s.remote, s.ptKind = ai.candidate, ai.ptKind
	s.remoteUfrag, s.remotePwd = ai.ufrag, ai.pwd
	if err := unix.Connect(fd, sockaddr(s.remote)); err != nil {
		return fmt.Errorf("udp connect: %w", err)
	}
	s.iceDone = make(chan struct{})
	s.phase.Store(phaseICE)
	hc := newHandshakeConn(fd, net.UDPAddrFromAddrPort(s.remote))
	s.hs.Store(hc)
	if err := rd.add(s); err != nil {
		return err
	}
	if err := s.waitICE(ctx); err != nil {
		return err
	}
	s.phase.Store(phaseDTLS)
	keys, err := c.handshake(ctx, hc, ai.fingerprint)
	if err != nil {
		return err
	}
	s.keys.Store(keys)
	s.phase.Store(phaseMedia)
	s.connected.Store(monoNow())
	return nil
}

// waitICE sends binding requests every 50 ms until one succeeds.
func (s *subscriber) waitICE(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.sendBinding()
		select {
		case <-s.iceDone:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("ice: %w", ErrTimeout)
		case <-t.C:
		}
	}
}

// handshake runs the DTLS client (RFC 5763 §5, a=setup:active), checks the
// server fingerprint, extracts SRTP keys (RFC 5764 §4.2) and shuts the DTLS
// conn down without sending close_notify or closing the socket.
func (c *connector) handshake(ctx context.Context, hc *handshakeConn, want string) (*subKeys, error) {
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if want == "" || len(raw) == 0 {
			return nil
		}
		if !strings.EqualFold(fingerprintOf(raw[0]), want) {
			return ErrFingerprint
		}
		return nil
	}
	conn, err := dtls.ClientWithOptions(hc, hc.raddr,
		dtls.WithCertificates(c.id.cert),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verify),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithFlightInterval(dtlsFlightInterval),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
	)
	if err != nil {
		return nil, fmt.Errorf("dtls client: %w", err)
	}
	defer func() {
		hc.muted.Store(true)
		_ = conn.Close()
	}()
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("dtls handshake: %w", err)
	}
	return srtpKeys(conn)
}

func srtpKeys(conn *dtls.Conn) (*subKeys, error) {
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, ErrNoSRTPProfile
	}
	var cfg srtp.Config
	switch prof {
	case dtls.SRTP_AEAD_AES_128_GCM:
		cfg.Profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		cfg.Profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return nil, ErrNoSRTPProfile
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, ErrNoSRTPProfile
	}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		return nil, fmt.Errorf("srtp keys: %w", err)
	}
	dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("srtp context: %w", err)
	}
	enc, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("srtp context: %w", err)
	}
	return &subKeys{dec: dec, enc: enc}, nil
}

// dtlsFlightInterval is the DTLS retransmission timer. RFC 6347 §4.2.4.1
// suggests 1 s; on loopback a lost first flight (a server whose DTLS side is
// not up yet when its ICE answers) would then show as a 1 s connect-time
// tail that says nothing about the server's speed, so the bench uses 300 ms.
const dtlsFlightInterval = 300 * time.Millisecond
