package srtpx

import (
	"crypto/aes"
	"math/rand/v2"
	"testing"

	"github.com/pion/srtp/v3"
)

var benchProfiles = []struct {
	name string
	p    srtp.ProtectionProfile
}{
	{"gcm", srtp.ProtectionProfileAeadAes128Gcm},
	{"cm80", srtp.ProtectionProfileAes128CmHmacSha1_80},
}

// benchPacket is a 1200-byte RTP packet (12-byte header, one-byte-form
// extension, payload): a typical video packet.
func benchPacket(b *testing.B) []byte {
	p := pkt{ssrc: 1, ext: 1, payload: 1200 - 24}.marshal(b, rand.New(rand.NewPCG(10, 10)))
	if len(p) != 1200 {
		b.Fatalf("packet is %d bytes", len(p))
	}
	return p
}

// BenchmarkProtect is ROC.Next + Sender.Protect of one 1200-byte packet, in place.
func BenchmarkProtect(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run("profile="+pr.name, func(b *testing.B) {
			s, _, _ := pair(b, pr.p, rand.New(rand.NewPCG(11, 11)))
			plain := benchPacket(b)
			buf := make([]byte, len(plain), len(plain)+s.Overhead())
			copy(buf, plain)
			var r ROC
			seq := uint16(0)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				seq++
				buf[2], buf[3] = byte(seq>>8), byte(seq)
				if _, err := s.Protect(buf, len(plain), r.Next(seq)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPionEncrypt is the same work through pion/srtp's Context.EncryptRTP
// into a reused destination buffer.
func BenchmarkPionEncrypt(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run("profile="+pr.name, func(b *testing.B) {
			_, enc, _ := pair(b, pr.p, rand.New(rand.NewPCG(11, 11)))
			plain := benchPacket(b)
			dst := make([]byte, 0, len(plain)+16)
			seq := uint16(0)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				seq++
				plain[2], plain[3] = byte(seq>>8), byte(seq)
				out, err := enc.EncryptRTP(dst, plain, nil)
				if err != nil {
					b.Fatal(err)
				}
				dst = out[:0]
			}
		})
	}
}

// BenchmarkCTR is the AES-CM keystream of a 1188-byte payload: mode=reset
// rewrites one stream's counter (ctr.go), mode=new is cipher.NewCTR per
// packet, the fallback. It is the measurement behind the unsafe reset.
func BenchmarkCTR(b *testing.B) {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		c    *ctr
	}{{"reset", newCTR(block)}, {"new", &ctr{block: block}}} {
		b.Run("mode="+m.name, func(b *testing.B) {
			if m.name == "reset" && m.c.state == nil {
				b.Skip("counter reset unavailable on this Go version")
			}
			buf := make([]byte, 1188)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			lo := uint64(0)
			for b.Loop() {
				lo += 1 << 16
				m.c.xor(buf, 42, lo)
			}
		})
	}
}
