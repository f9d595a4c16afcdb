// Package srtpx is the fastpath's own SRTP sender: it protects RTP packets
// for sending (RFC 3711 §3.3, RFC 7714 §5-§9) with AEAD_AES_128_GCM and
// AEAD_AES_256_GCM, and with AES_CM_128_HMAC_SHA1_80 and _32 and their
// AES-256 variants (RFC 6188), in place and with no allocation per packet.
//
// # Why it is written here and not taken from pion/srtp
//
// The fastpath encrypts every egress packet once per subscriber, so this is
// the most repeated piece of work in Fanout. pion/srtp's Context.EncryptRTP
// costs, on each packet, a map lookup for the SSRC's state, its own rollover
// counter estimate, a full re-parse of the RTP header, and for AES-CM a
// block-at-a-time counter mode (about 2 µs per 1200-byte packet where the
// standard library's pipelined AES-CTR takes about 0.23 µs). The fastpath
// already knows each outgoing packet's sequence number and rollover counter
// (it rewrites them), so a transform keyed once per session, taking the ROC
// as an argument and reusing the standard library's AES-GCM, AES-CTR and
// HMAC-SHA1, does the same job without that overhead. pion/srtp stays in
// charge of everything else: decryption of ingress SRTP, SRTCP both ways,
// and replay protection. Tests check every profile byte for byte against
// pion/srtp and against the RFC test vectors.
//
// # What it covers, what it does not
//
// [Sender] derives the SRTP session keys from the DTLS-exported master key
// and salt (RFC 3711 §4.3, key_derivation_rate 0) and protects RTP packets of
// one session direction, for any number of SSRCs. [ROC] is the per-SSRC
// sender-side rollover counter (RFC 3711 §3.3.1). Not covered: decryption,
// SRTCP, MKI, key derivation rates other than 0, RFC 4771 ROC-in-tag, and
// RFC 9335 header-extension encryption (cryptex); pion/srtp handles those
// where Fanout needs them.
//
// # Zero-allocation AES-CTR
//
// crypto/cipher.NewCTR allocates its 512-byte state on every call, and the
// standard library has no way to re-key the counter of an existing stream.
// For AES-CM a Sender therefore keeps one stream and rewrites its counter
// fields before each packet, through unsafe, at offsets found by reflection
// and verified against fresh streams once per process (see ctr.go). If that
// check ever fails (a Go release changed crypto/aes), Protect falls back to
// one cipher.NewCTR per packet, which is correct but allocates;
// [ZeroAllocCTR] reports which one is in use so the caller can log it once.
//
// # Who imports it, concurrency
//
// The fastpath and its sub-packages; it imports only the standard library
// and pion/srtp (for the profile constants). A Sender and a ROC belong to
// the one core that owns the session: no method is safe for concurrent use.
// Senders of different sessions are independent.
package srtpx
