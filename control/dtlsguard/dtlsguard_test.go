package dtlsguard

import (
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol/alert"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// TestRealFlightsPass: every datagram of real pion/dtls handshakes, whole
// and with every message fragmented by a small MTU, passes.
func TestRealFlightsPass(t *testing.T) {
	for _, mtu := range []int{1200, 150} {
		client, server := flights(t, mtu)
		for i, d := range append(client, server...) {
			if p := Check(d); p.Fault != OK {
				t.Errorf("mtu %d: datagram %d (%d bytes) flagged: %v", mtu, i, len(d), p)
			}
		}
	}
}

// TestCorrupted: each way of breaking a real flight is named and gets the
// alert RFC 5246 §7.2.2 calls for.
func TestCorrupted(t *testing.T) {
	client, server := flights(t, 1200)
	for _, c := range corruptions(client, server) {
		t.Run(c.name, func(t *testing.T) {
			d, at := find(t, c.from, c.typ)
			if p := Check(d); p.Fault != OK {
				t.Fatalf("the original is flagged: %v", p)
			}
			p := Check(c.edit(d, at))
			if p.Fault != c.fault || p.Fault.Alert() != c.alert {
				t.Fatalf("got %v (alert %d), want %v (alert %d)", p, p.Fault.Alert(), c.fault, c.alert)
			}
			if p.InHandshake && p.Fault != FaultHandshakeType && p.HandshakeType != c.typ {
				t.Errorf("blamed %s, want %s", HandshakeName(p.HandshakeType), HandshakeName(c.typ))
			}
		})
	}
}

// edit changes a copy of a datagram whose message of interest has its
// handshake header at offset at.
type edit func(d []byte, at int) []byte

// corruption is one way to break a message of type typ from a capture.
type corruption struct {
	name  string
	from  [][]byte
	typ   uint8
	edit  edit
	fault Fault
	alert Alert
}

func corruptions(client, server [][]byte) []corruption {
	length := func(delta int) edit { // the handshake length field
		return func(d []byte, at int) []byte { put24(d[at+1:], uint24(d[at+1:])+delta); return d }
	}
	return []corruption{
		{"client_hello length too large", client, ClientHello, length(+16), FaultBodyUnderrun, AlertDecodeError},
		{"client_hello length too small", client, ClientHello, length(-1), FaultFragmentBeyondLength, AlertIllegalParameter},
		{"client_hello fragment_length past record", client, ClientHello, func(d []byte, at int) []byte {
			put24(d[at+1:], uint24(d[at+1:])+1)
			put24(d[at+9:], uint24(d[at+9:])+1)
			return d
		}, FaultFragmentLength, AlertDecodeError},
		{"client_hello fragment_offset past length", client, ClientHello, func(d []byte, at int) []byte {
			put24(d[at+6:], 1)
			return d
		}, FaultFragmentBeyondLength, AlertIllegalParameter},
		{"client_hello session_id of 33", client, ClientHello, func(d []byte, at int) []byte {
			d[at+HandshakeHeaderLen+34] = 33
			return d
		}, FaultVectorLength, AlertDecodeError},
		{"client_hello odd cipher_suites", client, ClientHello, func(d []byte, at int) []byte {
			cs := at + HandshakeHeaderLen + 34 + 1 + int(d[at+HandshakeHeaderLen+34])
			cs += 1 + int(d[cs])
			d[cs+1]--
			return d
		}, FaultVectorLength, AlertDecodeError},
		{"client_hello unknown type", client, ClientHello, func(d []byte, at int) []byte {
			d[at] = 99
			return d
		}, FaultHandshakeType, AlertUnexpectedMessage},
		{"certificate length too large", client, Certificate, length(+7), FaultBodyUnderrun, AlertDecodeError},
		{"certificate length too small", client, Certificate, length(-3), FaultFragmentBeyondLength, AlertIllegalParameter},
		{"certificate list too long", client, Certificate, func(d []byte, at int) []byte {
			put24(d[at+HandshakeHeaderLen:], uint24(d[at+HandshakeHeaderLen:])+1)
			return d
		}, FaultBodyOverrun, AlertDecodeError},
		{"certificate entry too long", client, Certificate, func(d []byte, at int) []byte {
			put24(d[at+HandshakeHeaderLen+3:], uint24(d[at+HandshakeHeaderLen+3:])+1)
			return d
		}, FaultBodyOverrun, AlertDecodeError},
		{"certificate_verify length too large", client, CertificateVerify, length(+2), FaultBodyUnderrun, AlertDecodeError},
		{"server_hello length too large", server, ServerHello, length(+1), FaultBodyUnderrun, AlertDecodeError},
		{"hello_verify_request cookie too long", server, HelloVerifyRequest, func(d []byte, at int) []byte {
			d[at+HandshakeHeaderLen+2]++
			return d
		}, FaultBodyOverrun, AlertDecodeError},
		{"certificate_request length too large", server, CertificateRequest, length(+1), FaultBodyUnderrun, AlertDecodeError},
		{"record length past datagram", client, ClientHello, func(d []byte, at int) []byte {
			d[at-1]++ // low byte of the record length
			return d
		}, FaultRecordLength, AlertDecodeError},
		{"truncated datagram", client, ClientHello, func(d []byte, _ int) []byte { return d[:len(d)-1] },
			FaultRecordLength, AlertDecodeError},
		{"trailing bytes", client, ClientHello, func(d []byte, _ int) []byte { return append(d, 22, 0xfe) },
			FaultRecordLength, AlertDecodeError},
		{"empty record", client, ClientHello, func(d []byte, _ int) []byte {
			return append(d, 22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0)
		}, FaultRecordLength, AlertDecodeError},
		{"unknown content type", client, ClientHello, func(d []byte, at int) []byte {
			d[at-RecordHeaderLen] = 30
			return d
		}, FaultContentType, AlertUnexpectedMessage},
		{"TLS record version", client, ClientHello, func(d []byte, at int) []byte {
			d[at-RecordHeaderLen+1], d[at-RecordHeaderLen+2] = 3, 3
			return d
		}, FaultVersion, AlertProtocolVersion},
	}
}

// TestFragmentsLengthChecked: a length field that disagrees with the body
// is caught from a first fragment alone, while later fragments and a
// consistent first fragment pass.
func TestFragmentsLengthChecked(t *testing.T) {
	client, _ := flights(t, 150)
	d, at := find(t, client, Certificate)
	if uint24(d[at+9:]) >= uint24(d[at+1:]) {
		t.Fatalf("certificate not fragmented at mtu 150: fragment %d of %d", uint24(d[at+9:]), uint24(d[at+1:]))
	}
	if p := Check(d); p.Fault != OK {
		t.Fatalf("first fragment flagged: %v", p)
	}
	put24(d[at+1:], uint24(d[at+1:])+1)
	if p := Check(d); p.Fault != FaultBodyUnderrun {
		t.Fatalf("length+1 on a first fragment: got %v", p)
	}
}

// TestPlaintextOnly: a record of epoch 1 is ciphertext, so only its framing
// counts.
func TestPlaintextOnly(t *testing.T) {
	rec := []byte{ContentHandshake, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 3, 0, 4, 0xde, 0xad, 0xbe, 0xef}
	if p := Check(rec); p.Fault != OK {
		t.Fatalf("epoch 1 handshake flagged: %v", p)
	}
	rec[4] = 0
	if p := Check(rec); p.Fault != FaultFragmentLength {
		t.Fatalf("the same bytes at epoch 0: %v", p)
	}
}

// TestAlertRecord: the alert control writes is what pion reads as a fatal
// alert, at the sequence number given.
func TestAlertRecord(t *testing.T) {
	b := AppendAlert(nil, 0x0102030405, AlertDecodeError)
	var r recordlayer.RecordLayer
	if err := r.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	a, ok := r.Content.(*alert.Alert)
	if !ok || a.Level != alert.Fatal || a.Description != alert.DecodeError {
		t.Fatalf("not a fatal decode_error: %#v", r.Content)
	}
	if r.Header.Epoch != 0 || r.Header.SequenceNumber != 0x0102030405 {
		t.Fatalf("header %+v", r.Header)
	}
	if seq, ok := MaxSeq(append(AppendAlert(nil, 7, 10), b...), 0); !ok || seq != 0x0102030405 {
		t.Fatalf("MaxSeq = %d, %v", seq, ok)
	}
	if _, ok := MaxSeq(b, 1); ok {
		t.Fatal("MaxSeq found an epoch-1 record")
	}
}

// TestNoAllocs: the per-datagram calls allocate nothing.
func TestNoAllocs(t *testing.T) {
	client, server := flights(t, 150)
	all := append(append([][]byte(nil), client...), server...)
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		for _, d := range all {
			_ = Check(d)
			_, _ = MaxSeq(d, 0)
		}
		buf = AppendAlert(buf[:0], 3, AlertDecodeError)
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}
