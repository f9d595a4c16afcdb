package dtlsguard

import "strconv"

// Handshake types (RFC 5246 §7.4, RFC 6347 §4.3.2, RFC 5077, RFC 6066).
const (
	HelloRequest       = 0
	ClientHello        = 1
	ServerHello        = 2
	HelloVerifyRequest = 3
	NewSessionTicket   = 4
	Certificate        = 11
	ServerKeyExchange  = 12
	CertificateRequest = 13
	ServerHelloDone    = 14
	CertificateVerify  = 15
	ClientKeyExchange  = 16
	Finished           = 20
	certificateURL     = 21
	certificateStatus  = 22
	supplementalData   = 23
)

func knownHandshake(t uint8) bool {
	switch t {
	case HelloRequest, ClientHello, ServerHello, HelloVerifyRequest, NewSessionTicket, Certificate,
		ServerKeyExchange, CertificateRequest, ServerHelloDone, CertificateVerify, ClientKeyExchange,
		Finished, certificateURL, certificateStatus, supplementalData:
		return true
	}
	return false
}

// HandshakeName is a msg_type's name in RFC 5246's spelling.
func HandshakeName(t uint8) string {
	switch t {
	case HelloRequest:
		return "hello_request"
	case ClientHello:
		return "client_hello"
	case ServerHello:
		return "server_hello"
	case HelloVerifyRequest:
		return "hello_verify_request"
	case NewSessionTicket:
		return "new_session_ticket"
	case Certificate:
		return "certificate"
	case ServerKeyExchange:
		return "server_key_exchange"
	case CertificateRequest:
		return "certificate_request"
	case ServerHelloDone:
		return "server_hello_done"
	case CertificateVerify:
		return "certificate_verify"
	case ClientKeyExchange:
		return "client_key_exchange"
	case Finished:
		return "finished"
	}
	return "handshake type " + strconv.Itoa(int(t))
}

// body walks a handshake body whose declared length is n, of which the
// first len(b) bytes are at hand (a first fragment may hold fewer).
type body struct {
	b     []byte
	n     int
	off   int
	fault Fault
	cut   bool // the fragment ended before the structure did: no verdict
}

func (m *body) going() bool { return m.fault == OK && !m.cut }

// skip passes k fixed bytes.
func (m *body) skip(k int) {
	if !m.going() {
		return
	}
	m.off += k
	if m.off > m.n {
		m.fault = FaultBodyOverrun
	}
}

// vec passes a vector with a w-byte length prefix holding lo..hi bytes
// (RFC 5246 §4.3) and returns where its content starts and ends.
func (m *body) vec(w, lo, hi int) (start, end int) {
	if !m.going() {
		return 0, 0
	}
	if m.off+w > m.n {
		m.fault = FaultBodyOverrun
		return 0, 0
	}
	if m.off+w > len(m.b) {
		m.cut = true
		return 0, 0
	}
	l := 0
	for _, c := range m.b[m.off : m.off+w] {
		l = l<<8 | int(c)
	}
	if l < lo || l > hi {
		m.fault = FaultVectorLength
		return 0, 0
	}
	m.off += w
	start = m.off
	m.skip(l)
	return start, m.off
}

// list passes vectors of w-byte-prefixed items (lo..hi bytes each) that
// must fill [start, end) exactly.
func (m *body) list(start, end, w, lo, hi int) {
	if !m.going() {
		return
	}
	sub := body{b: m.b[:min(end, len(m.b))], n: end, off: start}
	for sub.going() && sub.off < end {
		sub.vec(w, lo, hi)
	}
	m.fault = sub.fault
}

// extensions passes the optional extensions block of a hello: absent when
// the body ends, else extensions<0..2^16-1> of type(2)
// extension_data<0..2^16-1> (RFC 5246 §7.4.1.2, §7.4.1.4).
func (m *body) extensions() {
	if !m.going() || m.off == m.n {
		return
	}
	start, end := m.vec(2, 0, 0xffff)
	if !m.going() {
		return
	}
	sub := body{b: m.b[:min(end, len(m.b))], n: end, off: start}
	for sub.going() && sub.off < end {
		sub.skip(2)
		sub.vec(2, 0, 0xffff)
	}
	m.fault = sub.fault
}

// finish is the verdict: a structure that ended inside the fragment must
// end exactly at the declared length.
func (m *body) finish() Fault {
	if m.fault != OK || m.cut {
		return m.fault
	}
	if m.off != m.n {
		return FaultBodyUnderrun
	}
	return OK
}

// checkBody checks the start of a message body b against its declared
// length n, for the messages whose layout does not depend on the cipher
// suite. ClientKeyExchange and ServerKeyExchange do, and Finished is never
// plaintext: only their headers are checked.
func checkBody(typ uint8, b []byte, n int) Fault {
	m := body{b: b, n: n}
	switch typ {
	case HelloRequest, ServerHelloDone: // empty (RFC 5246 §7.4.1.1, §7.4.5)
	case ClientHello: // RFC 6347 §4.2.1, RFC 5246 §7.4.1.2
		m.skip(2 + 32)   // client_version, random
		m.vec(1, 0, 32)  // session_id
		m.vec(1, 0, 255) // cookie
		if s, e := m.vec(2, 2, 0xfffe); m.going() && (e-s)%2 != 0 {
			m.fault = FaultVectorLength // cipher_suites are 2 bytes each
		}
		m.vec(1, 1, 255) // compression_methods
		m.extensions()
	case ServerHello: // RFC 5246 §7.4.1.3
		m.skip(2 + 32)
		m.vec(1, 0, 32)
		m.skip(2 + 1) // cipher_suite, compression_method
		m.extensions()
	case HelloVerifyRequest: // RFC 6347 §4.2.1
		m.skip(2)
		m.vec(1, 0, 255)
	case NewSessionTicket: // RFC 5077 §3.3
		m.skip(4)
		m.vec(2, 0, 0xffff)
	case Certificate: // RFC 5246 §7.4.2: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>
		s, e := m.vec(3, 0, 0xffffff)
		m.list(s, e, 3, 1, 0xffffff)
	case CertificateRequest: // RFC 5246 §7.4.4
		m.vec(1, 1, 255)            // certificate_types
		m.vec(2, 2, 0xfffe)         // supported_signature_algorithms
		s, e := m.vec(2, 0, 0xffff) // certificate_authorities
		m.list(s, e, 2, 1, 0xffff)
	case CertificateVerify: // RFC 5246 §7.4.8, §4.7: algorithm(2), signature<0..2^16-1>
		m.skip(2)
		m.vec(2, 0, 0xffff)
	default:
		return OK
	}
	return m.finish()
}
