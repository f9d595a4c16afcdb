// Package route is the whole contract between control and the fastpath, and
// builds on any OS (it imports only the standard library and pion/srtp's
// profile names): control and its tests never link the Linux socket code.
//
// Down: an immutable Table (Session, Stream, Keys, Track with its Codec)
// that control builds and publishes with an atomic pointer swap, and that
// every fastpath core loads once per receive batch. Up: the Upcall the
// fastpath hands control (STUN, DTLS, a closed TCP peer) and the
// SessionQuality snapshots its cores publish. Between: the ufrag↔core codec
// both sides (and the bpf steering program) decode the same way, and the
// TCP pseudo-address that makes a TCP peer a netip.AddrPort like any other.
//
// Who imports it: control (builds tables, reads upcalls), fastpath and its
// sub-packages (gop takes the Codec enum), cmd and bench. It holds no
// mutable state: a Table, once published, is never written again (the one
// exception is where Session.Seen points: a clock control hands the cores to
// store into); every function is pure and safe for concurrent use. Mutable
// per-session state (SRTP rollover counters, replay windows, seq/ts rewrite
// offsets, counters) lives in the fastpath core that owns the session and is
// keyed by SessionID and Epoch, so a new Epoch tells the core to rebuild it.
package route

import (
	"net/netip"
	"sync/atomic"

	"github.com/pion/srtp/v3"
)

// SessionID indexes Table.Sessions. Zero means "no session".
type SessionID uint32

// StreamID indexes Table.Streams. Zero means "no stream".
type StreamID uint32

// Role says which way media flows for a session.
type Role uint8

// Roles.
const (
	RoleNone Role = iota
	RolePublisher
	RolePlayer
)

// Kind is a media kind; it is also the track index within a stream, because
// a WHIP/WHEP session carries at most one audio and one video track
// (RFC 9725 §4.2: one MediaStream).
type Kind uint8

// Kinds.
const (
	KindAudio Kind = 0
	KindVideo Kind = 1
	NumKinds       = 2
)

// Track is one direction of one media kind of a session.
// For a publisher SSRC and PT are what it sends; for a player they are what
// the fastpath rewrites each forwarded packet to. SSRC 0 means "absent".
type Track struct {
	SSRC      uint32
	PT        uint8
	ClockRate uint32
	// Codec is the track's codec where the fastpath must recognise its
	// keyframes (the GOP cache); CodecOther for audio and the rest.
	Codec Codec
}

// Codec names a video codec whose keyframes the fastpath recognises (the
// keyframe cache, package fastpath/gop, takes it as is).
type Codec uint8

// Codecs.
const (
	CodecOther Codec = iota // audio, and video the keyframe cache does not know
	CodecH264
	CodecH265
	CodecVP8
	CodecVP9
	CodecAV1
)

// Keys is the SRTP key material exported from DTLS (RFC 5764 §4.2).
// Local keys protect what Fanout sends; remote keys what it receives.
type Keys struct {
	Profile    srtp.ProtectionProfile
	LocalKey   []byte
	LocalSalt  []byte
	RemoteKey  []byte
	RemoteSalt []byte
}

// Session is one ICE/DTLS association: one publisher or one player.
type Session struct {
	ID SessionID
	// Epoch changes whenever the slot is reused or the keys change; a core
	// whose state carries another epoch throws it away and starts again.
	Epoch  uint32
	Role   Role
	Stream StreamID
	// Peer is the latest address a valid STUN binding came from (ICE-lite:
	// the controlling agent's nomination; NAT rebinding moves it).
	Peer netip.AddrPort
	// Keys is nil until the DTLS handshake completes; until then media is
	// dropped and counted.
	Keys   *Keys
	Tracks [NumKinds]Track
	// NACK says whether the session negotiated generic NACK: a publisher
	// is sent NACKs for its lost packets, a player's NACKs are served.
	NACK bool
	// TWCCExt is the session's negotiated transport-cc header extension id
	// (RFC 8285): non-zero makes its core send a publisher transport-wide
	// feedback, and stamp a player's packets with transport sequence
	// numbers and estimate its bandwidth from its feedback (fastpath/bwe).
	TWCCExt uint8
	// DDExt is the negotiated id (RFC 8285) of the AV1 dependency
	// descriptor header extension (fastpath/av1dd), 0 = none: a
	// publisher's gives its AV1 packets' temporal layers and is kept on
	// them; a player's is the id they are forwarded to it under.
	DDExt uint8
	// Simulcast is a publisher's simulcast video (layers.go); zero for
	// one encoding.
	Simulcast Simulcast
	// Layer is the simulcast layer a player follows (0 = highest; a
	// value past the publisher's lowest means the lowest); with LayerAuto
	// it is the highest the player may get, and its Receiver Reports' loss
	// moves it lower and back (fastpath/layerauto.go).
	Layer     uint8
	LayerAuto bool
	// Temporal caps a player's VP9 or AV1 temporal layers: 0 = all, n =
	// only those with a TID below n (fastpath/svc.go).
	Temporal uint8
	// Core is the fastpath core that owns the session's mutable state
	// (SRTP contexts, rewrite offsets): control picks it and encodes it in
	// the server ICE ufrag (UfragForCore), and copies CoreOfUfrag here. A value outside the engine's cores (-1: the
	// ufrag names none) makes the cores derive the owner from ID. Datagrams
	// that land on another core are handed to the owner through its ring.
	Core int
	// Virtual marks a publisher without ICE, DTLS or a peer (rtmp_to_rtc):
	// its plaintext RTP comes from Engine.Inject, not from the socket, so it
	// is ready without Keys.
	Virtual bool
	// ICEUsername is the USERNAME of a binding request from the peer
	// ("serverUfrag:clientUfrag"), ICEKey the server's ice-pwd that keys
	// its MESSAGE-INTEGRITY. With both and Seen set, consent refreshes from
	// the current UDP peer are answered on the core (package stunx) and
	// never reach control; anything else still goes up.
	//
	// Seen is the session's last-seen stamp (Unix ns), control's per-session
	// atomic: the cores store into it on every packet that authenticates
	// (a binding request they answer, a binding indication from one of the
	// session's addresses, SRTP or SRTCP that decrypts), at most once per
	// core and 250 ms, with the clock read once per batch; control stores
	// it on DTLS and the bindings it answers, and its stun_timeout sweep
	// reads it. Nil: the cores store nothing.
	ICEUsername, ICEKey string
	Seen                *atomic.Int64
}

// Ready reports whether media may flow for the session.
func (s *Session) Ready() bool { return s.ID != 0 && (s.Keys != nil || s.Virtual) }

// Stream is one vhost/app/stream: at most one publisher, any number of players.
type Stream struct {
	ID        StreamID
	Publisher SessionID
	Players   []SessionID
	// KeyframeCache keeps the publisher's last GOP so a joining player
	// starts from a keyframe at once (`rtc { keyframe_cache on; }`).
	KeyframeCache bool
}

// Table is the immutable routing state. Build it with a Builder.
type Table struct {
	Version  uint64
	Sessions []Session // index = SessionID; [0] is unused
	Streams  []Stream  // index = StreamID; [0] is unused
	byAddr   map[netip.AddrPort]SessionID
}

// Empty is the table a fastpath starts with.
var Empty = &Table{Sessions: make([]Session, 1), Streams: make([]Stream, 1), byAddr: map[netip.AddrPort]SessionID{}}

// Lookup returns the session that owns the remote address, or nil.
func (t *Table) Lookup(addr netip.AddrPort) *Session {
	id, ok := t.byAddr[addr]
	if !ok {
		return nil
	}
	return &t.Sessions[id]
}

// Session returns the session with id, or nil when it is not in the table.
func (t *Table) Session(id SessionID) *Session {
	if id == 0 || int(id) >= len(t.Sessions) || t.Sessions[id].ID != id {
		return nil
	}
	return &t.Sessions[id]
}

// Stream returns the stream with id, or nil.
func (t *Table) Stream(id StreamID) *Stream {
	if id == 0 || int(id) >= len(t.Streams) || t.Streams[id].ID != id {
		return nil
	}
	return &t.Streams[id]
}

// Builder assembles a Table. It is not safe for concurrent use.
type Builder struct {
	t *Table
}

// NewBuilder starts a table with room for the given slot counts (the
// largest SessionID and StreamID in use).
func NewBuilder(version uint64, maxSession SessionID, maxStream StreamID) *Builder {
	return &Builder{t: &Table{
		Version:  version,
		Sessions: make([]Session, int(maxSession)+1),
		Streams:  make([]Stream, int(maxStream)+1),
		byAddr:   make(map[netip.AddrPort]SessionID),
	}}
}

// AddSession places s at its slot; addrs are every remote address that
// completed a STUN binding for it (RFC 8445 §7.3: all are valid sources).
func (b *Builder) AddSession(s Session, addrs ...netip.AddrPort) {
	b.t.Sessions[s.ID] = s
	for _, a := range addrs {
		b.t.byAddr[a] = s.ID
	}
}

// AddStream places st at its slot.
func (b *Builder) AddStream(st Stream) { b.t.Streams[st.ID] = st }

// Table returns the finished table; the builder must not be used again.
func (b *Builder) Table() *Table {
	t := b.t
	b.t = nil
	return t
}
