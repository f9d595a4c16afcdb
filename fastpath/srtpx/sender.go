package srtpx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/pion/srtp/v3"
)

// SRTP key derivation labels (RFC 3711 §4.3.1).
const (
	labelEncryption = 0x00
	labelAuth       = 0x01
	labelSalt       = 0x02
)

// Sender protects RTP packets of one SRTP session (one direction, all SSRCs)
// for sending. Build it with NewSender; it is owned by one goroutine.
type Sender struct {
	overhead int

	// AEAD profiles (RFC 7714).
	gcm   cipher.AEAD
	salt  [12]byte // session salt
	nonce [12]byte // per-packet IV, here so Seal's argument does not escape

	// AES-CM profiles (RFC 3711 §4.1.1, §4.2.1).
	ctr            *ctr
	saltHi, saltLo uint64    // k_s·2^16, the session salt as a 128-bit counter
	mac            hash.Hash // HMAC-SHA1 keyed with the session auth key
	sum            [sha1.Size]byte
}

// NewSender derives the session keys from the DTLS-exported master key and
// salt (RFC 3711 §4.3.1 and §4.3.3, AES-CM PRF with key_derivation_rate 0,
// which RFC 7714 §11 also uses for GCM) and returns a Sender for profile p:
// srtp.ProtectionProfileAeadAes128Gcm, AeadAes256Gcm, Aes128CmHmacSha1_80,
// Aes128CmHmacSha1_32, Aes256CmHmacSha1_80 or Aes256CmHmacSha1_32. Other
// profiles fail with ErrProfile, keys of the wrong length with ErrKeyLength.
func NewSender(p srtp.ProtectionProfile, masterKey, masterSalt []byte) (*Sender, error) {
	var keyLen, saltLen, tagLen int
	switch p {
	case srtp.ProtectionProfileAeadAes128Gcm:
		keyLen, saltLen, tagLen = 16, 12, 16
	case srtp.ProtectionProfileAeadAes256Gcm:
		keyLen, saltLen, tagLen = 32, 12, 16
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		keyLen, saltLen, tagLen = 16, 14, 10
	case srtp.ProtectionProfileAes128CmHmacSha1_32:
		keyLen, saltLen, tagLen = 16, 14, 4
	case srtp.ProtectionProfileAes256CmHmacSha1_80:
		keyLen, saltLen, tagLen = 32, 14, 10
	case srtp.ProtectionProfileAes256CmHmacSha1_32:
		keyLen, saltLen, tagLen = 32, 14, 4
	default:
		return nil, fmt.Errorf("%w: %v", ErrProfile, p)
	}
	if len(masterKey) != keyLen || len(masterSalt) != saltLen {
		return nil, fmt.Errorf("%w: %v takes a %d-byte key and a %d-byte salt, got %d and %d",
			ErrKeyLength, p, keyLen, saltLen, len(masterKey), len(masterSalt))
	}
	master, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("srtp master key: %w", err)
	}
	var authKey []byte
	if saltLen == 14 {
		authKey = deriveKey(master, masterSalt, labelAuth, sha1.Size)
	}
	return newSender(tagLen, deriveKey(master, masterSalt, labelEncryption, keyLen),
		deriveKey(master, masterSalt, labelSalt, saltLen), authKey)
}

// newSender builds a Sender from session keys: GCM for a 12-byte salt, else
// AES-CM with HMAC-SHA1 keyed with authKey.
func newSender(tagLen int, key, salt, authKey []byte) (*Sender, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("srtp session key: %w", err)
	}
	s := &Sender{overhead: tagLen}
	if len(salt) == len(s.salt) {
		copy(s.salt[:], salt)
		if s.gcm, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("srtp gcm: %w", err)
		}
		return s, nil
	}
	var ks [16]byte
	copy(ks[:], salt)
	s.saltHi, s.saltLo = binary.BigEndian.Uint64(ks[:8]), binary.BigEndian.Uint64(ks[8:])
	s.ctr = newCTR(block)
	s.mac = hmac.New(sha1.New, authKey)
	// The first Reset snapshots the keyed inner and outer hash states; later
	// Resets and Sums restore them without allocating.
	s.mac.Reset()
	return s, nil
}

// deriveKey is the AES-CM PRF of RFC 3711 §4.3.3 with key_derivation_rate 0
// (§4.3.1): the keystream from counter x·2^16, x = label·2^48 XOR
// master_salt, truncated to n bytes. The salt is 112 bits for AES-CM; RFC
// 7714 §11's 96-bit salt is placed the same way, from the first byte, as
// libsrtp and pion/srtp do.
func deriveKey(master cipher.Block, masterSalt []byte, label byte, n int) []byte {
	var iv [aes.BlockSize]byte
	copy(iv[:], masterSalt)
	iv[7] ^= label
	out := make([]byte, n)
	cipher.NewCTR(master, iv[:]).XORKeyStream(out, out)
	return out
}

// Overhead is the number of bytes Protect appends: 16 for GCM, 10 or 4 for
// HMAC-SHA1-80 or -32.
func (s *Sender) Overhead() int { return s.overhead }

// Protect encrypts in place the RTP packet buf[:n], whose rollover counter
// is roc (see ROC), and appends the authentication tag. buf[:n] is a full
// RTP header (12 bytes, the CSRCs, and the header extension if X is set),
// which stays in the clear, followed by the payload, which is encrypted.
// It returns the protected length n+Overhead(); buf[:n+Overhead()] is the
// SRTP packet, so buf needs that capacity (its length may be just n).
// It fails with ErrBuffer when n is out of range of buf or the capacity is
// short, with ErrHeader when the header is malformed, and never allocates.
func (s *Sender) Protect(buf []byte, n int, roc uint32) (int, error) {
	if n < 0 || n > len(buf) || cap(buf)-n < s.overhead {
		return 0, ErrBuffer
	}
	pkt := buf[:n+s.overhead]
	h, ok := headerLen(pkt[:n])
	if !ok {
		return 0, ErrHeader
	}
	if s.gcm != nil {
		// RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt; the
		// header is the associated data (§7.1); the tag follows the payload.
		iv := &s.nonce
		iv[0], iv[1] = 0, 0
		copy(iv[2:6], pkt[8:12])
		binary.BigEndian.PutUint32(iv[6:10], roc)
		copy(iv[10:12], pkt[2:4])
		subtle.XORBytes(iv[:], iv[:], s.salt[:])
		s.gcm.Seal(pkt[h:h], iv[:], pkt[h:n], pkt[:h])
		return len(pkt), nil
	}
	// RFC 3711 §4.1.1: IV = (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16), with the
	// packet index i = ROC·2^16 + SEQ (§3.3.1).
	ssrc := uint64(binary.BigEndian.Uint32(pkt[8:12]))
	i := uint64(roc)<<16 | uint64(binary.BigEndian.Uint16(pkt[2:4]))
	s.ctr.xor(pkt[h:n], s.saltHi^ssrc, s.saltLo^(i<<16))
	// RFC 3711 §4.2: tag = HMAC-SHA1(k_a, header || payload || ROC),
	// truncated. The ROC goes where the tag will be (Overhead is at least 4).
	binary.BigEndian.PutUint32(pkt[n:], roc)
	s.mac.Reset()
	_, _ = s.mac.Write(pkt[:n+4])
	copy(pkt[n:], s.mac.Sum(s.sum[:0]))
	return len(pkt), nil
}

// headerLen returns the length of the RTP header that starts pkt (RFC 3550
// §5.1 and §5.3.1: 12 bytes, 4 per CSRC, then the extension's 4-byte head
// and its length in 32-bit words), or false if pkt is not version 2 or
// shorter than its header.
func headerLen(pkt []byte) (int, bool) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return 0, false
	}
	h := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < h+4 {
			return 0, false
		}
		h += 4 + 4*int(binary.BigEndian.Uint16(pkt[h+2:]))
	}
	return h, len(pkt) >= h
}
