// Package rtph264 packetizes and depacketizes H.264 over RTP (RFC 6184,
// packetization-mode 1) the way SRS's RTMP⇄RTC bridge does: SPS and PPS go
// out as one STAP-A before every IDR, a NAL unit of up to MaxPayload bytes is
// sent as a single-NAL-unit packet and a larger one as FU-A fragments of
// MaxPayload bytes, with the marker bit on the access unit's last packet.
// B-frames are dropped unless KeepBframe is set.
//
// The depacketizer accepts single NAL unit, STAP-A and FU-A packets, emits an
// access unit at the marker bit (or when the timestamp changes), drops
// frames with missing packets and then waits for the next IDR.
//
// Values are not safe for concurrent use. Imported by bridge.
package rtph264

import "errors"

// Sentinel errors.
var (
	// ErrLoss means a sequence gap broke the frame in progress; the caller
	// should ask the sender for a key frame.
	ErrLoss = errors.New("rtph264: packet loss, frame dropped")
	// ErrBadPacket means a payload is malformed.
	ErrBadPacket = errors.New("rtph264: malformed payload")
	// ErrNoParams means an IDR arrived before any SPS/PPS.
	ErrNoParams = errors.New("rtph264: IDR without SPS/PPS")
)

// RFC 6184 payload types and limits.
const (
	naluSTAPA = 24
	naluFUA   = 28
	// MaxPayload is SRS's kRtpMaxPayloadSize: 1500 - 300 bytes.
	MaxPayload = 1200
	headerLen  = 12
)
