package srtpx

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protectCopy protects a copy of pkt and returns the SRTP packet.
func protectCopy(t testing.TB, s *Sender, pkt []byte, roc uint32) []byte {
	t.Helper()
	buf := make([]byte, len(pkt), len(pkt)+s.Overhead())
	copy(buf, pkt)
	n, err := s.Protect(buf, len(pkt), roc)
	if err != nil {
		t.Fatalf("Protect: %v", err)
	}
	return buf[:n]
}

// RFC 3711 Appendix B.3: the AES-CM PRF from the master key and salt.
func TestKeyDerivationRFC3711B3(t *testing.T) {
	master, err := aes.NewCipher(unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139"))
	if err != nil {
		t.Fatal(err)
	}
	salt := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	for _, c := range []struct {
		name  string
		label byte
		want  string
	}{
		{"cipher key", labelEncryption, "C61E7A93744F39EE10734AFE3FF7A087"},
		{"cipher salt", labelSalt, "30CBBC08863D8C85D49DB34A9AE1"},
		// The RFC derives a 94-byte auth key; HMAC-SHA1 uses its first 20.
		{"auth key", labelAuth, `CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
			E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
			6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2`},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := unhex(t, c.want)
			if got := deriveKey(master, salt, c.label, len(want)); !bytes.Equal(got, want) {
				t.Errorf("got %X\nwant %X", got, want)
			}
		})
	}
}

// RFC 3711 Appendix B.2: the AES-CM keystream for SSRC 0, index 0, through
// Protect (so the IV construction is covered too): a zero payload encrypts
// to the keystream. The full 65282-block segment checks the tail as well.
func TestKeystreamRFC3711B2(t *testing.T) {
	s, err := newSender(10, unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"),
		unhex(t, "F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), make([]byte, 20))
	if err != nil {
		t.Fatal(err)
	}
	const segment = 1044512
	pkt := make([]byte, 12+segment)
	pkt[0] = 0x80
	out := protectCopy(t, s, pkt, 0)[12 : 12+segment]
	head := unhex(t, "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
	tail := unhex(t, "EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
	if !bytes.Equal(out[:48], head) {
		t.Errorf("keystream start %X\nwant %X", out[:48], head)
	}
	if !bytes.Equal(out[segment-48:], tail) {
		t.Errorf("keystream end %X\nwant %X", out[segment-48:], tail)
	}
}

// libsrtp's srtp_validate reference packet (test/srtp_driver.c), from the
// master key and salt of RFC 3711 B.3: KDF, AES-CM and HMAC-SHA1 end to end.
func TestLibsrtpValidate(t *testing.T) {
	key := unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139")
	salt := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	plain := unhex(t, "800f1234 decafbad cafebabe abababab abababab abababab abababab")
	enc := unhex(t, "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc 99ea179b 8dbb")
	for _, c := range []struct {
		name string
		p    srtp.ProtectionProfile
		want []byte
	}{
		{"cm80", srtp.ProtectionProfileAes128CmHmacSha1_80, enc},
		{"cm32", srtp.ProtectionProfileAes128CmHmacSha1_32, enc[:len(enc)-6]},
	} {
		t.Run("profile="+c.name, func(t *testing.T) {
			s, err := NewSender(c.p, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			if got := protectCopy(t, s, plain, 0); !bytes.Equal(got, c.want) {
				t.Errorf("got  %x\nwant %x", got, c.want)
			}
		})
	}
}

// RFC 7714 §16.1.1 and §16.2.1: AEAD_AES_128_GCM and AEAD_AES_256_GCM
// encryption of an RTP packet, from the session key and salt, ROC 0.
func TestGCMRFC7714(t *testing.T) {
	plain := unhex(t, `8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
		69736120 696e2070 61727465 73207472 6573`)
	salt := unhex(t, "517569642070726f2071756f")
	for _, c := range []struct{ name, key, want string }{
		{"gcm", "000102030405060708090a0b0c0d0e0f", `8040f17b 8041f8d3 5501a0b2 f24de3a3
			fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf
			8833899d 7f27beb1 6a9152cf 765ee439 0cce`},
		{"gcm256", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", `8040f17b 8041f8d3 5501a0b2 32b1de78
			a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799
			b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13`},
	} {
		t.Run("profile="+c.name, func(t *testing.T) {
			s, err := newSender(16, unhex(t, c.key), salt, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, c.want)
			if got := protectCopy(t, s, plain, 0); !bytes.Equal(got, want) {
				t.Errorf("got  %x\nwant %x", got, want)
			}
		})
	}
}
