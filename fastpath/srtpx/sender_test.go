package srtpx

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestProtectMalformed: bad input is an error, never a panic, and the
// buffer is left as it was.
func TestProtectMalformed(t *testing.T) {
	hdr := func(b0 byte, rest ...byte) []byte {
		return append([]byte{b0, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, rest...)
	}
	ext := func(words byte, body int) []byte {
		return hdr(0x90, append([]byte{0xbe, 0xde, 0, words}, make([]byte, body)...)...)
	}
	for _, pr := range profiles {
		rng := rand.New(rand.NewPCG(6, 6))
		s, _, _ := pair(t, pr.p, rng)
		o := s.Overhead()
		for _, c := range []struct {
			name string
			pkt  []byte
			n    int // -1: len(pkt)
			cap  int // extra capacity beyond n; -1: Overhead
			want error
		}{
			{"empty", nil, -1, -1, ErrHeader},
			{"11 bytes", hdr(0x80)[:11], -1, -1, ErrHeader},
			{"version 0", hdr(0x00), -1, -1, ErrHeader},
			{"version 1", hdr(0x40), -1, -1, ErrHeader},
			{"version 3", hdr(0xc0), -1, -1, ErrHeader},
			{"CC beyond length", hdr(0x8f, make([]byte, 56)...), -1, -1, ErrHeader},
			{"CC one word short", hdr(0x82, make([]byte, 7)...), -1, -1, ErrHeader},
			{"extension head missing", hdr(0x90, 0xbe, 0xde, 0), -1, -1, ErrHeader},
			{"extension length beyond", ext(2, 7), -1, -1, ErrHeader},
			{"extension length 0xffff", hdr(0x90, 0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4), -1, -1, ErrHeader},
			{"CSRCs then extension beyond", hdr(0x91, append(make([]byte, 4), 0xbe, 0xde, 0, 1)...), -1, -1, ErrHeader},
			{"n beyond len", hdr(0x80), 13, 10, ErrBuffer},
			{"n negative", hdr(0x80), -2, -1, ErrBuffer},
			{"no room for the tag", hdr(0x80, 1, 2, 3), -1, o - 1, ErrBuffer},
			{"no room at all", hdr(0x80, 1, 2, 3), -1, 0, ErrBuffer},
			{"header only", hdr(0x80), -1, -1, nil},
			{"extension, empty payload", ext(2, 8), -1, -1, nil},
			{"all CSRCs", hdr(0x8f, make([]byte, 60)...), -1, -1, nil},
		} {
			t.Run("profile="+pr.name+"/"+c.name, func(t *testing.T) {
				n := c.n
				if n == -1 {
					n = len(c.pkt)
				}
				extra := c.cap
				if extra == -1 {
					extra = o
				}
				buf := make([]byte, len(c.pkt), max(len(c.pkt), n)+extra)
				copy(buf, c.pkt)
				m, err := s.Protect(buf, n, 1)
				if !errors.Is(err, c.want) {
					t.Fatalf("got (%d, %v), want %v", m, err, c.want)
				}
				if err == nil && m != n+o {
					t.Fatalf("length %d, want %d", m, n+o)
				}
				if err != nil && !bytes.Equal(buf, c.pkt) {
					t.Fatal("buffer changed on error")
				}
			})
		}
	}
}

func TestZeroAllocCTR(t *testing.T) {
	if !ZeroAllocCTR() {
		t.Error("the AES-CTR counter reset failed its self-check on this Go version; " +
			"AES-CM protection falls back to one allocation per packet (see ctr.go)")
	}
}

// TestCTR checks the counter reset and the fallback against fresh
// cipher.NewCTR streams, for counters whose low 64 bits carry.
func TestCTR(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	key := make([]byte, 16)
	fill(rng, key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	fast, slow := newCTR(block), &ctr{block: block}
	if fast.state == nil && ZeroAllocCTR() {
		t.Fatal("no reset state although the probe passed")
	}
	var iv [16]byte
	for i := range 500 {
		n := rng.IntN(1500)
		hi, lo := rng.Uint64(), rng.Uint64()
		if i%5 == 0 {
			lo = ^uint64(0) - uint64(rng.IntN(4))
		}
		be := func(b []byte, v uint64) {
			for j := range 8 {
				b[j] = byte(v >> (56 - 8*j))
			}
		}
		be(iv[:8], hi)
		be(iv[8:], lo)
		want := make([]byte, n)
		fill(rng, want)
		a, b := bytes.Clone(want), bytes.Clone(want)
		cipher.NewCTR(block, iv[:]).XORKeyStream(want, want)
		fast.xor(a, hi, lo)
		slow.xor(b, hi, lo)
		if !bytes.Equal(a, want) || !bytes.Equal(b, want) {
			t.Fatalf("case %d (n %d, counter %x%x): reset %v, fallback %v", i, n, hi, lo, bytes.Equal(a, want), bytes.Equal(b, want))
		}
	}
}
