package fastpath

// Class is what a datagram on the shared port carries (RFC 7983 §7, as
// updated by RFC 9443 §3.1).
type Class uint8

// Classes.
const (
	ClassGarbage Class = iota
	ClassSTUN
	ClassDTLS
	ClassRTP
	ClassRTCP
)

// Classify sorts a datagram by its first bytes: 0–3 STUN, 20–63 DTLS,
// 128–191 RTP or RTCP (RTCP when the second byte, the packet type with the
// marker bit, is 192–223 — RFC 5761 §4).
func Classify(b []byte) Class {
	if len(b) == 0 {
		return ClassGarbage
	}
	switch c := b[0]; {
	case c <= 3:
		if len(b) < 20 {
			return ClassGarbage
		}
		return ClassSTUN
	case c >= 20 && c <= 63:
		if len(b) < 13 {
			return ClassGarbage
		}
		return ClassDTLS
	case c >= 128 && c <= 191:
		if len(b) < 12 {
			return ClassGarbage
		}
		if b[1] >= 192 && b[1] <= 223 {
			return ClassRTCP
		}
		return ClassRTP
	}
	return ClassGarbage
}
