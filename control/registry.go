package control

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// registry is the state Server.mu guards: sessions and streams with their
// indexes, the id and SSRC allocators, the counters, and the route-table
// bookkeeping. Server embeds it; only code holding mu touches it.
type registry struct {
	sessions map[route.SessionID]*session
	byUfrag  map[string]*session
	byAddr   map[netip.AddrPort]*session
	streams  map[string]*stream // by vhost/app/stream
	pubsByIP map[netip.Addr]int // live publishers per limited source (limits.go)
	freeIDs  []route.SessionID
	nextID   route.SessionID
	nextSt   route.StreamID
	freeSt   []route.StreamID
	version  uint64 // of the last table built
	epoch    uint32
	ssrc     uint32 // the last player SSRC handed out
	closing  bool
	draining bool
	counts   Counters

	// Route-table publishing (changedLocked): when the last table was
	// built, how long player changes wait after it, and whether some wait.
	published    time.Time
	publishGap   time.Duration
	dirty        bool
	flushPending bool
	replies      []stunReply  // sent once the table with their address is out
	pending      *route.Table // built, handed to the fastpath by unlock
	peerOps      []peerOp     // Config.Peers changes, applied by unlock
}

// peerOp is a session UDP address coming (add) or going, for Config.Peers.
type peerOp struct {
	addr netip.AddrPort
	add  bool
}

// peerLocked queues a change of the session addresses for Config.Peers;
// TCP peers are no UDP 5-tuples and are skipped.
func (s *Server) peerLocked(a netip.AddrPort, add bool) {
	if s.cfg.Peers != nil && !route.IsTCPPeer(a) {
		s.peerOps = append(s.peerOps, peerOp{addr: a, add: add})
	}
}

// stream is one vhost/app/stream. Its fields are guarded by Server.mu;
// id, sid, key and the names never change.
type stream struct {
	id        route.StreamID
	sid       string // API id
	key       string // vhost/app/stream
	vhost     string
	app, name string
	publisher *session
	players   map[*session]struct{}
	created   time.Time
	kfCache   bool // rtc.keyframe_cache of its vhost when it was created
}

func streamKey(vhost, app, name string) string { return vhost + "/" + app + "/" + name }

// streamLocked returns the stream, creating it.
func (s *Server) streamLocked(vhost, app, name string) *stream {
	k := streamKey(vhost, app, name)
	if st := s.streams[k]; st != nil {
		return st
	}
	var id route.StreamID
	if n := len(s.freeSt); n > 0 {
		id, s.freeSt = s.freeSt[n-1], s.freeSt[:n-1]
	} else {
		s.nextSt++
		id = s.nextSt
	}
	st := &stream{id: id, sid: "vid-" + randomString(7), key: k, vhost: vhost, app: app, name: name,
		players: map[*session]struct{}{}, created: time.Now(), kfCache: s.cfg.Vhost(vhost).KeyframeCache}
	s.streams[k] = st
	return st
}

// dropIfEmptyLocked forgets a stream nobody publishes or plays.
func (s *Server) dropIfEmptyLocked(st *stream) {
	if st.publisher == nil && len(st.players) == 0 && s.streams[st.key] == st {
		delete(s.streams, st.key)
		s.freeSt = append(s.freeSt, st.id)
	}
}

// detachLocked removes ss from its stream and drops an empty stream.
func (s *Server) detachLocked(ss *session) {
	st := ss.stream
	if st.publisher == ss {
		st.publisher = nil
	}
	delete(st.players, ss)
	s.dropIfEmptyLocked(st)
}

// newSessionLocked allocates a session slot and credentials.
func (s *Server) newSessionLocked(role route.Role, st *stream, ufrag, pwd, remoteUfrag string) *session {
	var id route.SessionID
	if n := len(s.freeIDs); n > 0 {
		id, s.freeIDs = s.freeIDs[n-1], s.freeIDs[:n-1]
	} else {
		s.nextID++
		id = s.nextID
	}
	if ufrag == "" {
		// The fastpath core that will own the session, named in the ufrag
		// so the SK_REUSEPORT program steers its 5-tuple there (package bpf).
		core := 0
		if p, ok := s.fp.(interface{ PickCore() int }); ok {
			core = p.PickCore()
		}
		ufrag = route.UfragForCore(core, randomString(8))
	}
	if pwd == "" {
		pwd = randomString(32)
	}
	s.epoch++
	ss := &session{
		id: id, role: role, stream: st, localUfrag: ufrag, localPwd: pwd, remoteUfrag: remoteUfrag,
		token: randomString(9), etag: `"` + randomString(16) + `"`,
		created: time.Now(), epoch: s.epoch, done: make(chan struct{}),
	}
	if remoteUfrag != "" {
		ss.iceUser = ufrag + ":" + remoteUfrag
	}
	ss.lastSeen.Store(ss.created.UnixNano())
	ss.log = s.log.With(slog.String("session", ss.sessionName()), slog.String("stream", st.key),
		slog.String("role", ss.kind()))
	ss.transport = newDTLSTransport(s.fp.WriteTo, s.peerOf(ss))
	s.sessions[id] = ss
	s.byUfrag[ufrag] = ss
	s.counts.SessionsCreated++
	return ss
}

// peerOf is the address a session's DTLS records go to, read under mu.
func (s *Server) peerOf(ss *session) func() netip.AddrPort {
	return func() netip.AddrPort {
		s.mu.Lock()
		defer s.unlock()
		return ss.peer
	}
}

// nextSSRCLocked hands out player SSRCs from a process-wide counter (SRS).
func (s *Server) nextSSRCLocked() uint32 {
	s.ssrc++
	if s.ssrc == 0 {
		s.ssrc++
	}
	return s.ssrc
}

// register negotiates against the stream's current description and adds
// the session, atomically with the one-publisher check.
func (s *Server) register(o offer, nopt sdpneg.Options) (*session, *sdpneg.Negotiated, error) {
	role := route.RolePublisher
	if o.Play {
		role = route.RolePlayer
	}
	dtlsRole := s.cfg.Vhost(o.Vhost).DTLSRole
	s.mu.Lock()
	defer s.unlock()
	if s.closing || s.draining {
		return nil, nil, ErrDraining
	}
	st := s.streamLocked(o.Vhost, o.App, o.Stream)
	var neg *sdpneg.Negotiated
	err := s.admitLocked(o, st)
	switch {
	case err != nil:
	case o.Play:
		neg, err = sdpneg.NegotiatePlay(o.parsed, st.descLocked(), nopt)
	case st.publisher != nil:
		err = fmt.Errorf("%w: %s", ErrStreamBusy, st.key)
	default:
		neg, err = sdpneg.NegotiatePublish(o.parsed, nopt)
	}
	if err != nil {
		s.dropIfEmptyLocked(st)
		return nil, nil, err
	}
	ss := s.newSessionLocked(role, st, o.Ufrag, o.Pwd, o.parsed.ICEUfrag)
	ss.remoteFP = o.parsed.Fingerprint
	ss.remotePwd = o.parsed.ICEPwd
	ss.cid, ss.clientIP, ss.param = o.cid, o.ClientIP, o.Param
	ss.setup = sdpneg.SetupFor(o.parsed, dtlsRole)
	ss.nack = nopt.NACK
	ss.layer = o.Layer
	ss.temporal = uint8(o.Temporal)
	s.applyTracksLocked(ss, neg)
	if o.Play {
		st.players[ss] = struct{}{}
	} else {
		st.publisher = ss
		if o.Source.IsValid() {
			ss.source = o.Source
			s.pubsByIP[o.Source]++
		}
	}
	s.changedLocked(ss)
	return ss, neg, nil
}

// applyTracksLocked records the negotiated tracks on the session.
func (s *Server) applyTracksLocked(ss *session, neg *sdpneg.Negotiated) {
	desc := &sdpneg.StreamDesc{}
	for _, t := range neg.Tracks {
		k := route.Kind(t.Kind)
		if k >= route.NumKinds {
			continue
		}
		c := t.Codec
		ss.codecs[k] = c.Name
		tr := route.Track{PT: c.PT, ClockRate: c.ClockRate, SSRC: t.SSRC, Codec: routeCodec(c.Name)}
		if t.TWCCExt != 0 && (ss.role == route.RolePublisher || t.TWCCExt <= 14) {
			// One id per BUNDLE transport (RFC 8285 §6); a player's must fit
			// the one-byte form the fastpath stamps (fastpath/playerbwe.go).
			ss.twccExt = t.TWCCExt
		}
		if k == route.KindVideo {
			ss.ddExt = t.DDExt
		}
		if t.Simulcast != nil && ss.role == route.RolePublisher {
			ss.sim = simulcastOf(t.Simulcast)
		}
		if ss.role == route.RolePlayer {
			tr.SSRC = s.nextSSRCLocked()
		}
		ss.tracks[k] = tr
		if k == route.KindAudio {
			desc.Audio = &c
		} else {
			desc.Video = &c
		}
	}
	if ss.role == route.RolePublisher {
		ss.desc = desc
	}
}

// installKeys hands a finished DTLS association's keys to the fastpath.
func (s *Server) installKeys(ss *session, k *route.Keys, profile string) {
	s.mu.Lock()
	if ss.ended {
		s.unlock()
		return
	}
	ss.keys, ss.profile = k, profile
	s.epoch++
	ss.epoch = s.epoch
	epoch := ss.epoch
	peer := ss.peer
	s.changedLocked(ss)
	s.unlock()
	ss.log.Info("dtls done", "srtp", profile, "peer", peer)
	s.publisherReady(ss, epoch)
}

// end tears a session down once: registry, route table, DTLS, hooks,
// Events, and the session's summary line.
func (s *Server) end(ss *session, reason string) {
	q, hasQ := s.quality(ss.id) // before the table forgets the session
	s.mu.Lock()
	if ss.ended {
		s.unlock()
		return
	}
	ss.ended, ss.reason = true, reason
	delete(s.sessions, ss.id)
	if s.byUfrag[ss.localUfrag] == ss {
		delete(s.byUfrag, ss.localUfrag)
	}
	var tcp []netip.AddrPort
	for _, a := range ss.addrs {
		if s.byAddr[a] == ss {
			delete(s.byAddr, a)
			s.peerLocked(a, false)
		}
		if route.IsTCPPeer(a) {
			tcp = append(tcp, a)
		}
	}
	s.detachLocked(ss)
	s.releaseSourceLocked(ss)
	s.freeIDs = append(s.freeIDs, ss.id)
	s.counts.SessionsEnded++
	s.changedLocked(ss)
	started, peer, profile := ss.started, ss.peer, ss.profile
	s.unlock()
	for _, a := range tcp {
		s.closeTCP(a, false) // its WebRTC-over-TCP connections end with it
	}
	s.publisherGone(ss)
	s.endHooks(ss)
	ss.doneOnce.Do(func() { close(ss.done) })
	if !started {
		ss.transport.Close() // no DTLS goroutine owns it
	}
	attrs := []any{"reason", reason, "duration", time.Since(ss.created).Round(time.Millisecond),
		"srtp", profile, "peer", peer, "transport", transportOf(peer),
		"video", ss.codecs[route.KindVideo], "audio", ss.codecs[route.KindAudio]}
	if hasQ {
		var pkts, bytes uint64
		var lost int64
		for _, t := range q.Tracks {
			pkts, bytes, lost = pkts+t.Packets, bytes+t.Bytes, lost+t.Lost
		}
		attrs = append(attrs, "packets", pkts, "bytes", bytes, "lost", lost, "nacks", q.NACKs, "rtt", q.RTT)
	}
	ss.log.Info("session end", attrs...)
}

// descLocked is what a player negotiates against: the publisher's codecs,
// or SRS's default description when nobody publishes yet (#2362).
func (st *stream) descLocked() sdpneg.StreamDesc {
	if st.publisher == nil || st.publisher.desc == nil {
		return sdpneg.DefaultStreamDesc()
	}
	return *st.publisher.desc
}

const letters = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
