// Package ice is Fanout's ICE-lite agent (RFC 8445 §2.5): it answers STUN
// Binding Requests on the media port. The checks it sends (Check) are
// not a lite agent's: see there.
//
// Unlike SRS, which authenticates a request by its USERNAME alone, it
// verifies MESSAGE-INTEGRITY (RFC 8489 §14.5, short-term credential keyed
// with the local ice-pwd) and FINGERPRINT (§14.7) before it answers, so a
// spoofed datagram cannot move a session's address.
//
// Who imports it: control. It wraps pion/stun for the wire format.
package ice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/pion/stun/v4"
)

// Sentinel errors.
var (
	ErrNotBinding  = errors.New("ice: not a binding request")
	ErrNoUsername  = errors.New("ice: no USERNAME")
	ErrIntegrity   = errors.New("ice: MESSAGE-INTEGRITY mismatch")
	ErrFingerprint = errors.New("ice: FINGERPRINT mismatch")
	ErrMalformed   = errors.New("ice: malformed STUN message")
	// ErrResponse: a Binding success or error response, the peer's answer
	// to Check; not an error of the peer's.
	ErrResponse = errors.New("ice: binding response")
)

// Request is a parsed Binding Request, not yet authenticated.
type Request struct {
	msg         stun.Message
	LocalUfrag  string // the server's ufrag: first half of USERNAME
	RemoteUfrag string
	UseCand     bool
}

// Parse decodes a Binding Request and splits its USERNAME
// ("serverUfrag:clientUfrag", RFC 8445 §7.2.2).
func Parse(b []byte) (*Request, error) {
	r := &Request{}
	r.msg.Raw = append(r.msg.Raw[:0], b...)
	if err := r.msg.Decode(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.msg.Type == stun.BindingSuccess || r.msg.Type == stun.BindingError {
		return nil, ErrResponse
	}
	if r.msg.Type != stun.BindingRequest {
		return nil, ErrNotBinding
	}
	var u stun.Username
	if err := u.GetFrom(&r.msg); err != nil {
		return nil, ErrNoUsername
	}
	local, remote, ok := strings.Cut(u.String(), ":")
	if !ok || local == "" {
		return nil, ErrNoUsername
	}
	r.LocalUfrag, r.RemoteUfrag = local, remote
	r.UseCand = r.msg.Contains(stun.AttrUseCandidate)
	return r, nil
}

// Verify checks FINGERPRINT (when present) and MESSAGE-INTEGRITY with the
// local password.
func (r *Request) Verify(localPwd string) error {
	if r.msg.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(&r.msg); err != nil {
			return ErrFingerprint
		}
	}
	if err := stun.NewShortTermIntegrity(localPwd).Check(&r.msg); err != nil {
		return ErrIntegrity
	}
	return nil
}

// Response builds the Binding Success Response: the transaction id of the
// request, XOR-MAPPED-ADDRESS of the source, MESSAGE-INTEGRITY and
// FINGERPRINT (RFC 8489 §7.3.1.1).
func (r *Request) Response(from netip.AddrPort, localPwd string) ([]byte, error) {
	ip := from.Addr().Unmap()
	m, err := stun.Build(
		stun.NewTransactionIDSetter(r.msg.TransactionID),
		stun.BindingSuccess,
		// SRS echoes USERNAME; clients ignore it, tools comparing bytes expect it.
		stun.NewUsername(r.LocalUfrag+":"+r.RemoteUfrag),
		&stun.XORMappedAddress{IP: net.IP(ip.AsSlice()), Port: int(from.Port())},
		stun.NewShortTermIntegrity(localPwd),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, fmt.Errorf("ice response: %w", err)
	}
	return m.Raw, nil
}

// checkPriority is PRIORITY for a host candidate of type preference 126,
// local preference 65535, component 1 (RFC 8445 §5.1.2.1).
const checkPriority = 126<<24 | 65535<<8 | 255

// Check builds a Binding Request Fanout sends a peer after answering its
// checks while it joins (control's bind): USERNAME "peerUfrag:localUfrag",
// ICE-CONTROLLED with tieBreaker, keyed with the peer's ice-pwd (§7.2.2).
// A lite agent sends no checks (§2.5); this one is a full agent's
// triggered check (§7.3.1.4), for its effect on the controlling peer: an
// agent whose pair has just succeeded nominates it when a check arrives
// on it, at once, where it would otherwise wait for its next pacing tick
// (pion: 200 ms, and a lost check or answer costs another). The peer's
// answer comes back as ErrResponse and is dropped.
func Check(peerUfrag, localUfrag, peerPwd string, tieBreaker uint64) ([]byte, error) {
	var tb [8]byte
	binary.BigEndian.PutUint64(tb[:], tieBreaker)
	var prio [4]byte
	binary.BigEndian.PutUint32(prio[:], checkPriority)
	m, err := stun.Build(
		stun.TransactionID,
		stun.BindingRequest,
		stun.NewUsername(peerUfrag+":"+localUfrag),
		stun.RawAttribute{Type: stun.AttrICEControlled, Value: tb[:]},
		stun.RawAttribute{Type: stun.AttrPriority, Value: prio[:]},
		stun.NewShortTermIntegrity(peerPwd),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, fmt.Errorf("ice check: %w", err)
	}
	return m.Raw, nil
}
