package route

import "net/netip"

// UpcallKind says what an Upcall carries.
type UpcallKind uint8

// Upcall kinds.
const (
	UpSTUN      UpcallKind = iota + 1 // a STUN message the cores did not answer themselves
	UpDTLS                            // a DTLS record of a known peer
	UpTCPClosed                       // a TCP peer's connection closed; Data is empty
	// UpKeyframe: players of virtual publisher Session want a keyframe
	// (coalesced like PLIs to a peer, at most one per keyframe interval);
	// Data is empty. The virtual publisher's source (a relay) asks upstream.
	UpKeyframe
)

// MaxUpcall is the most bytes an Upcall carries (the fastpath's largest
// datagram); longer messages are cut.
const MaxUpcall = 2048

// Upcall is a message the fastpath hands control through its bounded
// upcall channel (DESIGN.md "Control → fastpath": what goes back up). Data
// is valid until control hands the Upcall back with the engine's Release.
type Upcall struct {
	Kind    UpcallKind
	Session SessionID // 0 when the source address is not bound yet
	From    netip.AddrPort
	Data    []byte
	Core    int // the core whose socket received it
	// Buf is the pooled buffer Data lies in. It belongs to the fastpath,
	// which fills it and takes it back on Release; control never touches it.
	Buf *[MaxUpcall]byte
}
