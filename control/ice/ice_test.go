package ice

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// specRequest is the Binding Request of SRS's connectivity check (spec,
// "Connection Failures"): USERNAME 6pk11386:J8X7, keyed with specPwd.
var specRequest = []byte("\x00\x01\x00\x50\x21\x12\xa4\x42\x74\x79\x6d\x7a\x41\x51\x2b\x2f\x4a\x4b\x77\x52\x00\x06\x00\x0d\x36\x70\x6b\x31\x31\x33\x38\x36\x3a\x4a\x38\x58\x37\x00\x00\x00\xc0\x57\x00\x04\x00\x01\x00\x0a\x80\x2a\x00\x08\xda\xad\x1d\xce\xe8\x95\x5a\x83\x00\x24\x00\x04\x6e\x7f\x1e\xff\x00\x08\x00\x14\x56\x8f\x1e\x1e\x4f\x5f\x17\xf9\x2e\xa1\xec\xbd\x51\xd9\xa2\x27\xe4\xfd\xda\xb1\x80\x28\x00\x04\x84\xd3\x5a\x79")

const specPwd = "l91z529147ri9163933p51c4"

func TestParseVerify(t *testing.T) {
	r, err := Parse(specRequest)
	if err != nil {
		t.Fatal(err)
	}
	if r.LocalUfrag != "6pk11386" || r.RemoteUfrag != "J8X7" {
		t.Fatalf("ufrags %q %q", r.LocalUfrag, r.RemoteUfrag)
	}
	if err := r.Verify(specPwd); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := r.Verify("wrong-password-123456789"); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("wrong pwd: %v", err)
	}
	bad := append([]byte(nil), specRequest...)
	bad[len(bad)-1] ^= 1 // FINGERPRINT
	r2, err := Parse(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Verify(specPwd); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("bad fingerprint: %v", err)
	}
	from := netip.MustParseAddrPort("[2001:db8::1]:5000")
	resp, err := r.Response(from, specPwd)
	if err != nil {
		t.Fatal(err)
	}
	m := &stun.Message{Raw: resp}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess || m.TransactionID != r.msg.TransactionID {
		t.Fatalf("response: %v %v", err, m)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err != nil || xor.Port != 5000 || xor.IP.String() != "2001:db8::1" {
		t.Fatalf("xor-mapped %v %v", xor, err)
	}
	if err := stun.NewShortTermIntegrity(specPwd).Check(m); err != nil {
		t.Fatal(err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Fatal(err)
	}
}

func TestParseRejects(t *testing.T) {
	ind, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication))
	noUser, _ := stun.Build(stun.TransactionID, stun.BindingRequest)
	emptyLocal, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(":x"))
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", specRequest[:10], ErrMalformed},
		{"truncated", specRequest[:40], ErrMalformed},
		{"indication", ind.Raw, ErrNotBinding},
		{"no username", noUser.Raw, ErrNoUsername},
		{"empty local ufrag", emptyLocal.Raw, ErrNoUsername},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.b); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzParse: no input panics, and whatever parses can be verified and
// answered.
func FuzzParse(f *testing.F) {
	f.Add(specRequest)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		_ = r.Verify(specPwd)
		if _, err := r.Response(netip.MustParseAddrPort("127.0.0.1:9"), specPwd); err != nil {
			t.Fatalf("response: %v", err)
		}
	})
}

// BenchmarkAnswer is what control spends on one binding request (parse,
// verify, build the answer); fastpath/stunx's BenchmarkAnswerSpec does the
// same request on the cores.
func BenchmarkAnswer(b *testing.B) {
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	b.ReportAllocs()
	for b.Loop() {
		r, err := Parse(specRequest)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Verify(specPwd); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Response(from, specPwd); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheck: Fanout's check names the peer's ufrag first, is keyed with
// the peer's password, says ICE-CONTROLLED, and the peer's answer parses
// as ErrResponse.
func TestCheck(t *testing.T) {
	b, err := Check("peer", "fanout", "peerpassword1234567890", 42)
	if err != nil {
		t.Fatal(err)
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var u stun.Username
	if err := u.GetFrom(m); err != nil || u.String() != "peer:fanout" {
		t.Errorf("USERNAME %q (%v), want peer:fanout", u.String(), err)
	}
	if err := stun.NewShortTermIntegrity("peerpassword1234567890").Check(m); err != nil {
		t.Errorf("integrity with the peer's password: %v", err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Error(err)
	}
	if v, err := m.Get(stun.AttrICEControlled); err != nil || len(v) != 8 || v[7] != 42 {
		t.Errorf("ICE-CONTROLLED %x (%v)", v, err)
	}
	if m.Contains(stun.AttrICEControlling) || m.Contains(stun.AttrUseCandidate) {
		t.Error("a controlled agent's check carries ICE-CONTROLLING or USE-CANDIDATE")
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		stun.NewShortTermIntegrity("peerpassword1234567890"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(resp.Raw); !errors.Is(err, ErrResponse) {
		t.Errorf("the peer's answer: %v, want ErrResponse", err)
	}
}
