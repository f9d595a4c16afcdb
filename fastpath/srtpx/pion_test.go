package srtpx

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

var profiles = []struct {
	name string
	p    srtp.ProtectionProfile
}{
	{"gcm", srtp.ProtectionProfileAeadAes128Gcm},
	{"gcm256", srtp.ProtectionProfileAeadAes256Gcm},
	{"cm80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	{"cm32", srtp.ProtectionProfileAes128CmHmacSha1_32},
	{"cm256_80", srtp.ProtectionProfileAes256CmHmacSha1_80},
	{"cm256_32", srtp.ProtectionProfileAes256CmHmacSha1_32},
}

// masterKeys returns a random master key and salt of p's lengths.
func masterKeys(t testing.TB, p srtp.ProtectionProfile, rng *rand.Rand) (key, salt []byte) {
	t.Helper()
	kl, err := p.KeyLen()
	if err != nil {
		t.Fatal(err)
	}
	sl, err := p.SaltLen()
	if err != nil {
		t.Fatal(err)
	}
	key, salt = make([]byte, kl), make([]byte, sl)
	fill(rng, key)
	fill(rng, salt)
	return key, salt
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// pair returns a Sender and pion contexts (a sender and a receiver) with the same keys.
func pair(t testing.TB, p srtp.ProtectionProfile, rng *rand.Rand) (s *Sender, enc, dec *srtp.Context) {
	t.Helper()
	key, salt := masterKeys(t, p, rng)
	s, err := NewSender(p, key, salt)
	if err != nil {
		t.Fatal(err)
	}
	if enc, err = srtp.CreateContext(key, salt, p); err != nil {
		t.Fatal(err)
	}
	if dec, err = srtp.CreateContext(key, salt, p); err != nil {
		t.Fatal(err)
	}
	return s, enc, dec
}

// pkt is the shape of a test RTP packet.
type pkt struct {
	ssrc    uint32
	seq     uint16
	csrcs   int
	ext     int // 0: none, 1: one-byte (RFC 8285), 2: two-byte, 3: RFC 3550 profile-specific
	payload int
}

func (p pkt) marshal(t testing.TB, rng *rand.Rand) []byte {
	t.Helper()
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: p.seq, Timestamp: rng.Uint32(), SSRC: p.ssrc, Marker: p.seq%2 == 0}
	for range p.csrcs {
		h.CSRC = append(h.CSRC, rng.Uint32())
	}
	switch p.ext {
	case 1:
		h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileOneByte
		_ = h.SetExtension(1, []byte{0x12, 0x34, 0x56})
		_ = h.SetExtension(3, []byte{0x01})
	case 2:
		h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileTwoByte
		_ = h.SetExtension(20, make([]byte, 17))
	case 3:
		h.Extension, h.ExtensionProfile = true, 0x1234
		_ = h.SetExtension(0, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	}
	payload := make([]byte, p.payload)
	fill(rng, payload)
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPion protects packets of many shapes and checks, for every profile,
// that the output equals pion's EncryptRTP byte for byte (pion tracks the
// ROC itself, Protect takes it from ROC.Next) and that pion decrypts it.
func TestPion(t *testing.T) {
	var shapes []pkt
	for _, n := range []int{0, 1, 2, 15, 16, 17, 100, 127, 128, 129, 160, 1172, 1200, 1300} {
		shapes = append(shapes, pkt{payload: n})
	}
	for n := 0; n <= 1300; n += 37 {
		shapes = append(shapes, pkt{payload: n, csrcs: n % 4, ext: n % 4})
	}
	shapes = append(shapes, pkt{csrcs: 15, ext: 1, payload: 50}, pkt{csrcs: 15, ext: 2}, pkt{ext: 3, payload: 1})
	for _, pr := range profiles {
		t.Run("profile="+pr.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(pr.p)))
			s, enc, dec := pair(t, pr.p, rng)
			var rocs [2]ROC
			seq := [2]uint16{65000, 1}
			for i, sh := range shapes {
				k := i % 2 // two SSRCs share the Sender
				sh.ssrc, sh.seq = 0x11110000+uint32(k), seq[k]
				seq[k] += 97
				plain := sh.marshal(t, rng)
				got := protectCopy(t, s, plain, rocs[k].Next(sh.seq))
				want, err := enc.EncryptRTP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%+v: Protect differs from pion EncryptRTP\n got %x\nwant %x", sh, got, want)
				}
				back, err := dec.DecryptRTP(nil, got, nil)
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("%+v: pion DecryptRTP: %v", sh, err)
				}
			}
		})
	}
}

// TestPionRollover sends two SSRCs across the 65535→0 wrap, with
// retransmissions of pre-wrap packets after it and of post-wrap packets,
// and long forward jumps. Every packet must equal pion's own encryption and
// decrypt in pion's receiver, which estimates the ROC from the sequence.
func TestPionRollover(t *testing.T) {
	seqs := []uint16{65530, 65531, 65533, 65535, 0, 1, 65534, 2, 65532, 3, 65535, 4, 30000, 65000,
		62769, 30001, 62000, 65535, 10, 40000, 7000, 60000, 100, 7000, 2, 200, 33000, 65500, 300}
	for _, pr := range profiles {
		t.Run("profile="+pr.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2, uint64(pr.p)))
			s, enc, dec := pair(t, pr.p, rng)
			var rocs [2]ROC
			for i, seq := range seqs {
				for k := range 2 {
					plain := pkt{ssrc: 7 + uint32(k), seq: seq + uint16(k), payload: 200}.marshal(t, rng)
					roc := rocs[k].Next(seq + uint16(k))
					got := protectCopy(t, s, plain, roc)
					want, err := enc.EncryptRTP(nil, plain, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("packet %d ssrc %d seq %d roc %d: differs from pion EncryptRTP", i, k, seq+uint16(k), roc)
					}
					if back, err := dec.DecryptRTP(nil, got, nil); err != nil || !bytes.Equal(back, plain) {
						t.Fatalf("packet %d ssrc %d seq %d roc %d: pion DecryptRTP: %v", i, k, seq+uint16(k), roc, err)
					}
				}
			}
			if rocs[0].roc != 3 {
				t.Errorf("final ROC %d, want 3", rocs[0].roc)
			}
		})
	}
}

// A packet protected with the wrong ROC fails authentication: the ROC is
// in the IV and (for AES-CM) in the HMAC input.
func TestWrongROC(t *testing.T) {
	for _, pr := range profiles {
		t.Run("profile="+pr.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(pr.p)))
			s, _, dec := pair(t, pr.p, rng)
			plain := pkt{ssrc: 5, seq: 1000, payload: 100}.marshal(t, rng)
			if _, err := dec.DecryptRTP(nil, protectCopy(t, s, plain, 1), nil); err == nil {
				t.Fatal("pion accepted ROC 1 where it expects 0")
			}
			dec.SetROC(5, 1)
			if back, err := dec.DecryptRTP(nil, protectCopy(t, s, plain, 1), nil); err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("pion told ROC 1: %v", err)
			}
		})
	}
}

func TestNewSenderErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		p         srtp.ProtectionProfile
		key, salt int
		want      error
	}{
		{"null profile", srtp.ProtectionProfileNullHmacSha1_80, 16, 14, ErrProfile},
		{"unknown profile", 0x7777, 16, 14, ErrProfile},
		{"gcm with cm salt", srtp.ProtectionProfileAeadAes128Gcm, 16, 14, ErrKeyLength},
		{"cm with gcm salt", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 12, ErrKeyLength},
		{"short key", srtp.ProtectionProfileAes128CmHmacSha1_32, 15, 14, ErrKeyLength},
		{"aes256 key for aes128", srtp.ProtectionProfileAeadAes128Gcm, 32, 12, ErrKeyLength},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSender(c.p, make([]byte, c.key), make([]byte, c.salt))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	for _, pr := range profiles {
		key, salt := masterKeys(t, pr.p, rand.New(rand.NewPCG(4, 4)))
		s, err := NewSender(pr.p, key, salt)
		if err != nil {
			t.Fatalf("%s: %v", pr.name, err)
		}
		tag, _ := pr.p.AuthTagRTPLen()
		aead, _ := pr.p.AEADAuthTagLen()
		if s.Overhead() != tag+aead {
			t.Errorf("%s: Overhead %d, want %d", pr.name, s.Overhead(), tag+aead)
		}
	}
}
