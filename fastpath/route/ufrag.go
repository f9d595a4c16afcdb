package route

// Placement: control chooses a session's core (fastpath Engine.PickCore) and
// writes it into the first two characters of the server ICE ufrag, as
// lowercase hex. Every STUN Binding Request of the session carries that
// ufrag first in its USERNAME ("serverUfrag:clientUfrag", RFC 8445 §7.2.2),
// which is what the SK_REUSEPORT program in package bpf reads to steer the
// 5-tuple to the core's socket; control copies CoreOfUfrag into
// Session.Core, which is what the cores read to agree on the owner. Both
// sides decode with the same rule, so they agree even on a client-chosen
// ufrag (legacy API ice-ufrag) that happens to look like one of ours.
//
// Hex digits are ice-chars (RFC 8839 §5.4) and survive URL query strings.

// MaxUfragCore is the largest core a ufrag can name (two hex digits).
const MaxUfragCore = 0xff

const hexDigits = "0123456789abcdef"

// UfragForCore returns an ICE ufrag that names core: two lowercase hex digits
// followed by random (at least 2 more characters keeps it a legal 4–256
// character ufrag, RFC 8839 §5.4). A core outside 0…MaxUfragCore is
// written as core 0.
func UfragForCore(core int, random string) string {
	if core < 0 || core > MaxUfragCore {
		core = 0
	}
	return string([]byte{hexDigits[core>>4], hexDigits[core&0xf]}) + random
}

// CoreOfUfrag decodes the core UfragForCore wrote, or returns -1 when the
// ufrag is shorter than 3 characters or does not start with two lowercase
// hex digits.
func CoreOfUfrag(ufrag string) int {
	if len(ufrag) < 3 {
		return -1
	}
	hi, lo := unhex(ufrag[0]), unhex(ufrag[1])
	if hi < 0 || lo < 0 {
		return -1
	}
	return hi<<4 | lo
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
