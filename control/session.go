package control

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// session is one publisher or player: its ICE credentials, its DTLS
// association and what the route table needs to know of it. The fields
// above epoch are set while it is registered (under Server.mu) and never
// change; those from epoch on are guarded by Server.mu. lastSeen is atomic
// (the cores store it too). The DTLS goroutine is the session's owner.
type session struct {
	id          route.SessionID
	role        route.Role
	stream      *stream
	localUfrag  string
	localPwd    string
	remoteUfrag string
	remotePwd   string // the offer's ice-pwd: keys Fanout's checks (ice.Check)
	iceUser     string // "localUfrag:remoteUfrag" for the fastpath's STUN answers; "" = any remote ufrag
	token       string
	cid         string // client id for the API and hooks
	clientIP    string
	source      netip.Addr // publisher: the limited source it counts against (limits.go)
	param       string     // the request's query string, passed to hooks
	etag        string
	remoteFP    string // "sha-256 AA:BB…" from the offer, "" when absent
	setup       string // our DTLS role: "passive" (server) or "active" (client)
	nack        bool
	twccExt     uint8                  // negotiated transport-cc extension id, 0 = none
	ddExt       uint8                  // negotiated AV1 dependency descriptor id, 0 = none (route.Session.DDExt)
	codecs      [route.NumKinds]string // negotiated codec names, "" = no track
	desc        *sdpneg.StreamDesc     // publisher: what players negotiate against
	tracks      [route.NumKinds]route.Track
	sim         route.Simulcast // publisher: its simulcast video (layer.go)
	layer       string          // player: the simulcast layer it asked for
	temporal    uint8           // player: VP9 or AV1 temporal layers below this TID, 0 = all (route.Session.Temporal)
	created     time.Time
	lastSeen    atomic.Int64 // unix ns of the last authenticated datagram (route.Session.Seen)
	log         *slog.Logger
	transport   *dtlsTransport

	epoch   uint32
	addrs   []netip.AddrPort
	moves   addrMoves // new addresses beyond the first (moves.go)
	peer    netip.AddrPort
	keys    *route.Keys
	profile string
	started bool // DTLS goroutine launched
	// joinAnswers: binding answers echoed while joining (upcall.go)
	joinAnswers int
	// addrPending: a binding from a new address awaits the next table
	// (Server.replies); its answers wait too.
	addrPending bool
	ended       bool
	reason      string
	virtual     bool // rtmp_to_rtc publisher: no ICE, DTLS or peer (virtual.go)
	// keyframes carries the fastpath's keyframe requests of a virtual
	// publisher to its source (pull.go); set at registration.
	keyframes chan struct{}

	// Events bookkeeping (virtual.go), guarded by evMu.
	evMu       sync.Mutex
	readySent  bool
	goneSent   bool
	readyEpoch uint32

	done     chan struct{}
	doneOnce sync.Once
}

func (ss *session) kind() string {
	if ss.role == route.RolePublisher {
		return "publish"
	}
	return "play"
}

// sessionName is SRS's session id: localUfrag:remoteUfrag.
func (ss *session) sessionName() string { return ss.localUfrag + ":" + ss.remoteUfrag }
