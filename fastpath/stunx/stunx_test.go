package stunx

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

const (
	pwd      = "0123456789abcdefghijklmn"
	username = "srvufrag:cliufrag"
)

// rawAttr adds an attribute with a fixed value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

// request builds a binding request the way a browser does.
func request(t testing.TB, user, key string, fingerprint bool) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(user),
		rawAttr{stun.AttrPriority, []byte{0x6e, 0x7f, 0x1e, 0xff}},
		rawAttr{stun.AttrICEControlling, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		rawAttr{stun.AttrUseCandidate, nil},
		stun.NewShortTermIntegrity(key)}
	if fingerprint {
		setters = append(setters, stun.Fingerprint)
	}
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// pionResponse is the response control/ice builds with pion/stun.
func pionResponse(t *testing.T, req []byte, from netip.AddrPort) []byte {
	t.Helper()
	in := &stun.Message{Raw: append([]byte(nil), req...)}
	if err := in.Decode(); err != nil {
		t.Fatal(err)
	}
	ip := from.Addr().Unmap()
	m, err := stun.Build(stun.NewTransactionIDSetter(in.TransactionID), stun.BindingSuccess,
		stun.NewUsername(username),
		&stun.XORMappedAddress{IP: net.IP(ip.AsSlice()), Port: int(from.Port())},
		stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// specRequest is the Binding Request of SRS's connectivity check (spec,
// "Connection Failures"): USERNAME 6pk11386:J8X7, keyed with specPwd; the
// same bytes as control/ice's test.
var specRequest = []byte("\x00\x01\x00\x50\x21\x12\xa4\x42\x74\x79\x6d\x7a\x41\x51\x2b\x2f\x4a\x4b\x77\x52\x00\x06\x00\x0d\x36\x70\x6b\x31\x31\x33\x38\x36\x3a\x4a\x38\x58\x37\x00\x00\x00\xc0\x57\x00\x04\x00\x01\x00\x0a\x80\x2a\x00\x08\xda\xad\x1d\xce\xe8\x95\x5a\x83\x00\x24\x00\x04\x6e\x7f\x1e\xff\x00\x08\x00\x14\x56\x8f\x1e\x1e\x4f\x5f\x17\xf9\x2e\xa1\xec\xbd\x51\xd9\xa2\x27\xe4\xfd\xda\xb1\x80\x28\x00\x04\x84\xd3\x5a\x79")

const (
	specPwd  = "l91z529147ri9163933p51c4"
	specUser = "6pk11386:J8X7"
)

// TestAnswerSpecRequest answers the spec's curl + nc check, as SRS does.
func TestAnswerSpecRequest(t *testing.T) {
	var r Responder
	r.SetKey(specPwd)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	dst := make([]byte, MaxResponse)
	n, err := r.Answer(dst, specRequest, specUser, from)
	if err != nil {
		t.Fatal(err)
	}
	m := &stun.Message{Raw: dst[:n]}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess || !bytes.Equal(m.TransactionID[:], specRequest[8:20]) {
		t.Fatalf("response %v %v", err, m)
	}
	var u stun.Username
	if err := u.GetFrom(m); err != nil || u.String() != specUser {
		t.Fatalf("USERNAME %q %v", u, err)
	}
	if err := stun.NewShortTermIntegrity(specPwd).Check(m); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAnswerSpec is control/ice's BenchmarkAnswer on the cores.
func BenchmarkAnswerSpec(b *testing.B) {
	var r Responder
	r.SetKey(specPwd)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	dst := make([]byte, MaxResponse)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Answer(dst, specRequest, specUser, from); err != nil {
			b.Fatal(err)
		}
	}
}

func responder() *Responder {
	var r Responder
	r.SetKey(pwd)
	return &r
}

func TestAnswerMatchesPion(t *testing.T) {
	for _, from := range []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:50000"),
		netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"),
		netip.MustParseAddrPort("[2001:db8::1]:65535"),
	} {
		for _, fp := range []bool{true, false} {
			req := request(t, username, pwd, fp)
			dst := make([]byte, MaxResponse)
			n, err := responder().Answer(dst, req, username, from)
			if err != nil {
				t.Fatalf("%v fingerprint=%v: %v", from, fp, err)
			}
			if want := pionResponse(t, req, from); !bytes.Equal(dst[:n], want) {
				t.Fatalf("%v: response differs from pion's\n got %x\nwant %x", from, dst[:n], want)
			}
			m := &stun.Message{Raw: dst[:n]}
			if err := m.Decode(); err != nil {
				t.Fatal(err)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil {
				t.Fatal(err)
			}
			if got, _ := netip.AddrFromSlice(xa.IP); got.Unmap() != from.Addr().Unmap() || xa.Port != int(from.Port()) {
				t.Fatalf("XOR-MAPPED-ADDRESS %v:%d, want %v", xa.IP, xa.Port, from)
			}
			if err := stun.NewShortTermIntegrity(pwd).Check(m); err != nil {
				t.Fatal(err)
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestAnswerRefuses(t *testing.T) {
	from := netip.MustParseAddrPort("127.0.0.1:50000")
	good := request(t, username, pwd, true)
	corrupt := func(req []byte, i int) []byte {
		b := append([]byte(nil), req...)
		b[i] ^= 0x01
		return b
	}
	noFP := request(t, username, pwd, false)
	noMI, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(username), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	success := append([]byte(nil), good...)
	success[0] = 0x01 // Binding Success (0x0101), not a request
	for _, tc := range []struct {
		name string
		req  []byte
		want error
	}{
		{"wrong password", request(t, username, "not-the-password-at-all!", true), ErrIntegrity},
		{"other session", request(t, "srvufrag:intruder", pwd, true), ErrUsername},
		{"no integrity", noMI.Raw, ErrIntegrity},
		{"payload bit flipped", corrupt(noFP, 49), ErrIntegrity},
		{"integrity bit flipped", corrupt(noFP, len(noFP)-1), ErrIntegrity},
		{"fingerprint bit flipped", corrupt(good, len(good)-1), ErrFingerprint},
		{"payload bit flipped under a fingerprint", corrupt(good, 49), ErrFingerprint},
		{"not a request", success, ErrMalformed},
		{"truncated", good[:len(good)-4], ErrMalformed},
		{"header only", good[:20], ErrMalformed},
		{"short", good[:12], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, MaxResponse)
			if _, err := responder().Answer(dst, tc.req, username, from); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	var unkeyed Responder
	if _, err := unkeyed.Answer(make([]byte, MaxResponse), good, username, from); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("unkeyed: %v", err)
	}
	if _, err := responder().Answer(make([]byte, 40), good, username, from); !errors.Is(err, ErrShort) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestAnswerAllocs(t *testing.T) {
	r := responder()
	req := request(t, username, pwd, true)
	dst := make([]byte, MaxResponse)
	from := netip.MustParseAddrPort("127.0.0.1:50000")
	if a := testing.AllocsPerRun(1000, func() {
		if _, err := r.Answer(dst, req, username, from); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("Answer allocates %v times per request", a)
	}
}

func BenchmarkAnswer(b *testing.B) {
	r := responder()
	req := request(b, username, pwd, true)
	dst := make([]byte, MaxResponse)
	from := netip.MustParseAddrPort("127.0.0.1:50000")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Answer(dst, req, username, from); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAnswer: no input panics, and whatever is answered is a response pion
// accepts (integrity and fingerprint included).
func FuzzAnswer(f *testing.F) {
	f.Add(request(f, username, pwd, true))
	f.Add(request(f, username, pwd, false))
	f.Add(request(f, "x:y", pwd, true))
	from := netip.MustParseAddrPort("[2001:db8::1]:4242")
	f.Fuzz(func(t *testing.T, req []byte) {
		dst := make([]byte, MaxResponse)
		n, err := responder().Answer(dst, req, username, from)
		if err != nil {
			return
		}
		m := &stun.Message{Raw: dst[:n]}
		if err := m.Decode(); err != nil {
			t.Fatal(err)
		}
		if err := stun.NewShortTermIntegrity(pwd).Check(m); err != nil {
			t.Fatal(err)
		}
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIsIndication: pion's and libnice-like keepalives (with and without
// FINGERPRINT) pass; requests, broken lengths and a wrong FINGERPRINT do not.
func TestIsIndication(t *testing.T) {
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication)}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	withFP := build(stun.Fingerprint)
	badFP := append([]byte(nil), withFP...)
	badFP[len(badFP)-1] ^= 1
	long := append(build(), 0, 0, 0, 0)
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"bare indication", build(), true},
		{"indication with FINGERPRINT", withFP, true},
		{"indication with SOFTWARE and FINGERPRINT", build(stun.NewSoftware("libnice"), stun.Fingerprint), true},
		{"wrong FINGERPRINT", badFP, false},
		{"binding request", request(t, username, pwd, true), false},
		{"length field disagrees", long, false},
		{"truncated header", withFP[:12], false},
	} {
		if got := IsIndication(tc.b); got != tc.want {
			t.Errorf("%s: IsIndication = %v, want %v", tc.name, got, tc.want)
		}
	}
	if a := testing.AllocsPerRun(1000, func() { IsIndication(withFP) }); a != 0 {
		t.Fatalf("IsIndication allocates %v times", a)
	}
}
