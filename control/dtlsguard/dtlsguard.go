// Package dtlsguard checks DTLS 1.2 datagrams before pion/dtls sees them,
// so that a malformed handshake gets a fatal alert at once instead of being
// skipped until the handshake times out.
//
// pion/dtls v3 discards what it cannot parse (RFC 6347 §4.1.2.7 allows
// that): a handshake fragment whose fragment_offset+fragment_length exceeds
// its length is skipped, one whose length exceeds its fragment waits for
// fragments that never come, and a message body that does not parse is left
// in the handshake cache while the flight keeps waiting. The same section
// lets an implementation alert instead, with fatal alerts only; SRS
// (OpenSSL) does, and ends the session.
//
// Check walks every record of a datagram (RFC 6347 §4.1) and, for handshake
// records of epoch 0 (plaintext, RFC 6347 §4.2.2), each message's header and
// the body of every first fragment against its declared length. Records of
// later epochs are encrypted: only their framing can be checked.
//
// Who imports it: control. It imports only the standard library.
//
// Concurrency: stateless functions over caller-owned bytes; they allocate
// nothing and are safe from any goroutine.
package dtlsguard

import (
	"encoding/binary"
	"strconv"
)

// Record and handshake header sizes (RFC 6347 §4.1, §4.2.2).
const (
	RecordHeaderLen    = 13
	HandshakeHeaderLen = 12
)

// Content types (RFC 5246 §6.2.1, RFC 6520, RFC 9146).
const (
	ContentChangeCipherSpec = 20
	ContentAlert            = 21
	ContentHandshake        = 22
	ContentApplicationData  = 23
	contentHeartbeat        = 24
	contentConnectionID     = 25
)

// Alert is a TLS AlertDescription (RFC 5246 §7.2).
type Alert uint8

// The alerts Check's faults map to.
const (
	AlertUnexpectedMessage Alert = 10
	AlertIllegalParameter  Alert = 47
	AlertDecodeError       Alert = 50
	AlertProtocolVersion   Alert = 70
)

// Fault is why a datagram is malformed; OK means Check found nothing.
type Fault uint8

// Faults, in the order Check meets them.
const (
	OK Fault = iota
	// FaultRecordLength: a record header, or the length it declares, runs
	// past the datagram, or a record is empty.
	FaultRecordLength
	// FaultVersion: the record version is neither DTLS 1.0 nor 1.2.
	FaultVersion
	// FaultContentType: a content type DTLS 1.2 does not define.
	FaultContentType
	// FaultFragmentLength: a handshake header or its fragment_length runs
	// past the record.
	FaultFragmentLength
	// FaultFragmentBeyondLength: fragment_offset+fragment_length exceeds the
	// message length.
	FaultFragmentBeyondLength
	// FaultHandshakeType: an unknown msg_type.
	FaultHandshakeType
	// FaultBodyOverrun: the body's fields run past the message length (the
	// length field is too small).
	FaultBodyOverrun
	// FaultBodyUnderrun: the body ends before the message length (the
	// length field is too large).
	FaultBodyUnderrun
	// FaultVectorLength: a vector's length is outside its range.
	FaultVectorLength
	numFaults
)

var faultNames = [numFaults]string{
	OK:                        "ok",
	FaultRecordLength:         "record length beyond the datagram",
	FaultVersion:              "unknown record version",
	FaultContentType:          "unknown content type",
	FaultFragmentLength:       "handshake fragment beyond the record",
	FaultFragmentBeyondLength: "handshake fragment beyond its message length",
	FaultHandshakeType:        "unknown handshake type",
	FaultBodyOverrun:          "handshake body longer than its length field",
	FaultBodyUnderrun:         "handshake body shorter than its length field",
	FaultVectorLength:         "handshake vector length out of range",
}

func (f Fault) String() string {
	if f < numFaults {
		return faultNames[f]
	}
	return "unknown fault"
}

// Alert is the fatal alert a fault calls for. Structure and length errors
// are decode_error (RFC 5246 §7.2.2); a fragment past its message length is
// illegal_parameter, as OpenSSL answers it (dtls1_preprocess_fragment); an
// unknown record or handshake type is unexpected_message (RFC 5246 §6.2.1).
func (f Fault) Alert() Alert {
	switch f {
	case FaultVersion:
		return AlertProtocolVersion
	case FaultContentType, FaultHandshakeType:
		return AlertUnexpectedMessage
	case FaultFragmentBeyondLength:
		return AlertIllegalParameter
	}
	return AlertDecodeError
}

// Problem is Check's verdict: the first fault, and for a handshake fault
// the message type it was found in.
type Problem struct {
	Fault Fault
	// HandshakeType is the msg_type of the faulty message, valid when
	// InHandshake is set.
	HandshakeType uint8
	InHandshake   bool
}

func (p Problem) String() string {
	if !p.InHandshake {
		return p.Fault.String()
	}
	return HandshakeName(p.HandshakeType) + ": " + p.Fault.String()
}

// Check reports the first malformed record of a datagram, or a Problem
// with Fault OK.
func Check(d []byte) Problem {
	for len(d) > 0 {
		if len(d) < RecordHeaderLen {
			return Problem{Fault: FaultRecordLength}
		}
		n := int(binary.BigEndian.Uint16(d[11:13]))
		// No DTLS 1.2 record is empty: epoch 0 carries a handshake header,
		// an alert or a change_cipher_spec, later epochs a nonce and a tag.
		if n == 0 || RecordHeaderLen+n > len(d) {
			return Problem{Fault: FaultRecordLength}
		}
		if d[1] != 0xfe || d[2] != 0xff && d[2] != 0xfd {
			return Problem{Fault: FaultVersion}
		}
		ct, epoch := d[0], binary.BigEndian.Uint16(d[3:5])
		if ct < ContentChangeCipherSpec || ct > contentConnectionID {
			return Problem{Fault: FaultContentType}
		}
		if ct == ContentHandshake && epoch == 0 {
			if p := checkHandshake(d[RecordHeaderLen : RecordHeaderLen+n]); p.Fault != OK {
				return p
			}
		}
		d = d[RecordHeaderLen+n:]
	}
	return Problem{}
}

// checkHandshake walks the handshake messages (or fragments) of one record
// (RFC 6347 §4.2.2).
func checkHandshake(r []byte) Problem {
	for len(r) > 0 {
		if len(r) < HandshakeHeaderLen {
			return Problem{Fault: FaultFragmentLength}
		}
		typ := r[0]
		length, off, flen := uint24(r[1:]), uint24(r[6:]), uint24(r[9:])
		p := Problem{HandshakeType: typ, InHandshake: true}
		if HandshakeHeaderLen+flen > len(r) {
			p.Fault = FaultFragmentLength
			return p
		}
		if off+flen > length {
			p.Fault = FaultFragmentBeyondLength
			return p
		}
		if !knownHandshake(typ) {
			p.Fault = FaultHandshakeType
			return p
		}
		if off == 0 {
			// A first fragment holds the start of the body: check it as far
			// as it goes against the declared length.
			p.Fault = checkBody(typ, r[HandshakeHeaderLen:HandshakeHeaderLen+flen], length)
			if p.Fault != OK {
				return p
			}
		}
		r = r[HandshakeHeaderLen+flen:]
	}
	return Problem{}
}

func uint24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }

// MaxSeq returns the highest sequence number among a datagram's records of
// the given epoch; ok is false when it has none.
func MaxSeq(d []byte, epoch uint16) (seq uint64, ok bool) {
	for len(d) >= RecordHeaderLen {
		if binary.BigEndian.Uint16(d[3:5]) == epoch {
			s := uint64(binary.BigEndian.Uint16(d[5:7]))<<32 | uint64(binary.BigEndian.Uint32(d[7:11]))
			if !ok || s > seq {
				seq, ok = s, true
			}
		}
		n := RecordHeaderLen + int(binary.BigEndian.Uint16(d[11:13]))
		if n > len(d) {
			break
		}
		d = d[n:]
	}
	return seq, ok
}

// AppendAlert appends a plaintext fatal alert record of epoch 0 with the
// given sequence number (RFC 6347 §4.1; RFC 5246 §7.2: level fatal(2)).
func AppendAlert(dst []byte, seq uint64, desc Alert) []byte {
	return append(dst, ContentAlert, 0xfe, 0xfd, 0, 0,
		byte(seq>>40), byte(seq>>32), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq),
		0, 2, 2, byte(desc))
}

func (a Alert) String() string {
	switch a {
	case AlertUnexpectedMessage:
		return "unexpected_message"
	case AlertIllegalParameter:
		return "illegal_parameter"
	case AlertDecodeError:
		return "decode_error"
	case AlertProtocolVersion:
		return "protocol_version"
	}
	return "alert " + strconv.Itoa(int(a))
}
