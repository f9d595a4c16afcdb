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
