// Package stunx answers ICE consent refreshes (RFC 7675) on the fastpath:
// a STUN Binding Request from a session's current address is verified and
// answered on the core that received it, without allocating, so keepalives
// never queue behind DTLS handshakes on control's upcall ring.
//
// Control (package control/ice, over pion/stun) still answers every binding
// from an address the route table does not know yet, and every request this
// package refuses. Why by hand: pion/stun decodes into a Message with an
// attribute slice and builds a new HMAC per check, a few allocations per
// request; a server with 10 000 players refreshes 2 000–5 000 times a second.
// Only the subset a lite agent answers is implemented: Binding Request in,
// Binding Success out, short-term MESSAGE-INTEGRITY (HMAC-SHA1) and
// FINGERPRINT (RFC 8489 §14.5, §14.7).
//
// Who imports it: fastpath.
package stunx

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // STUN's MESSAGE-INTEGRITY is HMAC-SHA1 (RFC 8489 §14.5)
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"net/netip"
)

// Errors; every one means "let control decide".
var (
	ErrMalformed   = errors.New("stunx: not a well-formed binding request")
	ErrUsername    = errors.New("stunx: USERNAME missing or not the session's")
	ErrIntegrity   = errors.New("stunx: MESSAGE-INTEGRITY missing or wrong")
	ErrFingerprint = errors.New("stunx: FINGERPRINT wrong")
	ErrShort       = errors.New("stunx: response buffer too small")
)

// Wire constants (RFC 8489 §5, §18.2, §14).
const (
	headerLen        = 20
	magicCookie      = 0x2112A442
	fingerprintXOR   = 0x5354554e
	typeBindingReq   = 0x0001
	typeBindingInd   = 0x0011
	typeBindingOK    = 0x0101
	attrUsername     = 0x0006
	attrIntegrity    = 0x0008
	attrXORMapped    = 0x0020
	attrFingerprint  = 0x8028
	integrityAttrLen = 4 + sha1.Size
	fingerprintLen   = 4 + 4
)

// MaxResponse bounds a response: header, USERNAME (at most 513 bytes),
// XOR-MAPPED-ADDRESS (IPv6), MESSAGE-INTEGRITY and FINGERPRINT.
const MaxResponse = headerLen + 4 + 516 + 4 + 20 + integrityAttrLen + fingerprintLen

// Responder verifies and answers binding requests for one session. The
// zero value has no key; SetKey allocates its HMAC once, Answer never does.
type Responder struct {
	key string
	mac hash.Hash
	sum [sha1.Size]byte
	hdr [headerLen]byte
}

// Key returns the password the Responder is keyed with.
func (r *Responder) Key() string { return r.key }

// SetKey keys the Responder with the server's ice-pwd.
func (r *Responder) SetKey(pwd string) {
	r.key = pwd
	r.mac = hmac.New(sha1.New, []byte(pwd))
}

// Answer checks that req is a Binding Request carrying username
// ("serverUfrag:clientUfrag"), a MESSAGE-INTEGRITY made with the key and,
// when present, a valid FINGERPRINT; then it writes into dst the Binding
// Success Response control would send (USERNAME echoed as SRS does,
// XOR-MAPPED-ADDRESS of from, MESSAGE-INTEGRITY, FINGERPRINT) and returns
// its length.
func (r *Responder) Answer(dst, req []byte, username string, from netip.AddrPort) (int, error) {
	if r.mac == nil {
		return 0, ErrIntegrity
	}
	if err := r.verify(req, username); err != nil {
		return 0, err
	}
	return r.respond(dst, req, username, from)
}

// verify walks req's attributes and checks USERNAME, MESSAGE-INTEGRITY and
// FINGERPRINT.
func (r *Responder) verify(req []byte, username string) error {
	if len(req) < headerLen || binary.BigEndian.Uint16(req) != typeBindingReq ||
		binary.BigEndian.Uint32(req[4:]) != magicCookie {
		return ErrMalformed
	}
	if n := int(binary.BigEndian.Uint16(req[2:])); n%4 != 0 || headerLen+n != len(req) {
		return ErrMalformed
	}
	userOK, mi, fp := false, -1, -1
	for off := headerLen; off < len(req); {
		if off+4 > len(req) {
			return ErrMalformed
		}
		t, l := binary.BigEndian.Uint16(req[off:]), int(binary.BigEndian.Uint16(req[off+2:]))
		next := off + 4 + (l+3)&^3
		if next > len(req) {
			return ErrMalformed
		}
		switch {
		case fp >= 0:
			return ErrFingerprint // FINGERPRINT must be the last attribute
		case t == attrFingerprint:
			if l != 4 {
				return ErrMalformed
			}
			fp = off
		case mi >= 0:
			// After MESSAGE-INTEGRITY only FINGERPRINT counts (§14.5).
		case t == attrUsername:
			userOK = string(req[off+4:off+4+l]) == username
		case t == attrIntegrity:
			if l != sha1.Size {
				return ErrMalformed
			}
			mi = off
		}
		off = next
	}
	if !userOK {
		return ErrUsername
	}
	if mi < 0 {
		return ErrIntegrity
	}
	if fp >= 0 && crc32.ChecksumIEEE(req[:fp])^fingerprintXOR != binary.BigEndian.Uint32(req[fp+4:]) {
		return ErrFingerprint
	}
	// The HMAC covers the message up to MESSAGE-INTEGRITY, with a header
	// length that ends at MESSAGE-INTEGRITY's end.
	copy(r.hdr[:], req[:headerLen])
	binary.BigEndian.PutUint16(r.hdr[2:], uint16(mi+integrityAttrLen-headerLen))
	if !hmac.Equal(r.integrity(r.hdr[:], req[headerLen:mi]), req[mi+4:mi+integrityAttrLen]) {
		return ErrIntegrity
	}
	return nil
}

// IsIndication reports whether b is a well-formed Binding Indication (RFC
// 8489 §6.3.2: a keepalive, which gets no answer): the header, attribute
// lengths that add up and, when its last attribute is a FINGERPRINT, a
// right one. It allocates nothing.
func IsIndication(b []byte) bool {
	if len(b) < headerLen || binary.BigEndian.Uint16(b) != typeBindingInd ||
		binary.BigEndian.Uint32(b[4:]) != magicCookie {
		return false
	}
	if n := int(binary.BigEndian.Uint16(b[2:])); n%4 != 0 || headerLen+n != len(b) {
		return false
	}
	last := -1
	for off := headerLen; off < len(b); {
		if off+4 > len(b) {
			return false
		}
		next := off + 4 + (int(binary.BigEndian.Uint16(b[off+2:]))+3)&^3
		if next > len(b) {
			return false
		}
		last, off = off, next
	}
	if last < 0 || binary.BigEndian.Uint16(b[last:]) != attrFingerprint {
		return true
	}
	return binary.BigEndian.Uint16(b[last+2:]) == 4 &&
		crc32.ChecksumIEEE(b[:last])^fingerprintXOR == binary.BigEndian.Uint32(b[last+4:])
}

// integrity returns HMAC-SHA1(key, a || b) in r.sum.
func (r *Responder) integrity(a, b []byte) []byte {
	r.mac.Reset()
	r.mac.Write(a)
	r.mac.Write(b)
	return r.mac.Sum(r.sum[:0])
}

// respond writes the Binding Success Response to req into dst.
func (r *Responder) respond(dst, req []byte, username string, from netip.AddrPort) (int, error) {
	ip := from.Addr().Unmap()
	addrLen := 4
	if ip.Is6() {
		addrLen = 16
	}
	size := headerLen + 4 + (len(username)+3)&^3 + 8 + addrLen + integrityAttrLen + fingerprintLen
	if len(dst) < size {
		return 0, ErrShort
	}
	binary.BigEndian.PutUint16(dst, typeBindingOK)
	copy(dst[4:headerLen], req[4:headerLen]) // magic cookie and transaction id
	n := headerLen

	binary.BigEndian.PutUint16(dst[n:], attrUsername)
	binary.BigEndian.PutUint16(dst[n+2:], uint16(len(username)))
	n += 4 + copy(dst[n+4:], username)
	for ; n%4 != 0; n++ {
		dst[n] = 0
	}

	binary.BigEndian.PutUint16(dst[n:], attrXORMapped)
	binary.BigEndian.PutUint16(dst[n+2:], uint16(4+addrLen))
	dst[n+4] = 0
	binary.BigEndian.PutUint16(dst[n+6:], from.Port()^magicCookie>>16)
	if ip.Is4() {
		dst[n+5] = 1
		a := ip.As4()
		binary.BigEndian.PutUint32(dst[n+8:], binary.BigEndian.Uint32(a[:])^magicCookie)
	} else {
		dst[n+5] = 2
		a := ip.As16()
		for i := range a {
			dst[n+8+i] = a[i] ^ dst[4+i] // cookie then transaction id (§14.2)
		}
	}
	n += 8 + addrLen

	binary.BigEndian.PutUint16(dst[2:], uint16(n+integrityAttrLen-headerLen))
	sum := r.integrity(dst[:n], nil)
	binary.BigEndian.PutUint16(dst[n:], attrIntegrity)
	binary.BigEndian.PutUint16(dst[n+2:], sha1.Size)
	n += 4 + copy(dst[n+4:], sum)

	binary.BigEndian.PutUint16(dst[2:], uint16(n+fingerprintLen-headerLen))
	binary.BigEndian.PutUint16(dst[n:], attrFingerprint)
	binary.BigEndian.PutUint16(dst[n+2:], 4)
	binary.BigEndian.PutUint32(dst[n+4:], crc32.ChecksumIEEE(dst[:n])^fingerprintXOR)
	return n + fingerprintLen, nil
}
