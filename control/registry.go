package control

import (
	"crypto/rand"
	"log/slog"
	"net/netip"
	"time"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// stream is one vhost/app/stream.
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
	st := s.streams[k]
	if st != nil {
		return st
	}
	var id route.StreamID
	if n := len(s.freeSt); n > 0 {
		id, s.freeSt = s.freeSt[n-1], s.freeSt[:n-1]
	} else {
		s.nextSt++
		id = s.nextSt
	}
	st = &stream{id: id, sid: "vid-" + randomString(7), key: k, vhost: vhost, app: app, name: name, players: map[*session]struct{}{}, created: time.Now()}
	if s.cfg.Vhost != nil {
		st.kfCache = s.cfg.Vhost(vhost).KeyframeCache
	}
	s.streams[k] = st
	return st
}

// detachLocked removes ss from its stream and drops an empty stream.
func (s *Server) detachLocked(ss *session) {
	st := ss.stream
	if st.publisher == ss {
		st.publisher = nil
	}
	delete(st.players, ss)
	if st.publisher == nil && len(st.players) == 0 && s.streams[st.key] == st {
		delete(s.streams, st.key)
		s.freeSt = append(s.freeSt, st.id)
	}
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
	ss.transport = newDTLSTransport(s.fp.WriteTo, func() netip.AddrPort { return ss.currentPeer(s) })
	s.sessions[id] = ss
	s.byUfrag[ufrag] = ss
	s.counts.SessionsCreated++
	return ss
}

// sessionName is SRS's session id: localUfrag:remoteUfrag.
func (ss *session) sessionName() string { return ss.localUfrag + ":" + ss.remoteUfrag }

// nextSSRCLocked hands out player SSRCs from a process-wide counter (SRS).
func (s *Server) nextSSRCLocked() uint32 {
	s.ssrc++
	if s.ssrc == 0 {
		s.ssrc++
	}
	return s.ssrc
}

// changedLocked publishes a change to ss to the fastpath. A publisher's
// changes go out at once: the RTMP bridge injects into a virtual publisher as
// soon as it exists, and PublisherReady follows its keys. Players' changes
// are coalesced. A rebuild is O(sessions) on control and on every core, so
// a join storm of n players republishing on each of their three changes
// (offer, binding, keys) would cost O(n²), under control's lock. The first
// change after a quiet spell is still published at once; later ones wait
// until the last rebuild is publishGapFactor × its own build time old, so
// rebuilding takes at most a few percent of a core at any table size.
func (s *Server) changedLocked(ss *session) {
	since := time.Since(s.published)
	if ss.role == route.RolePublisher || since >= s.publishGap {
		s.publishLocked()
		return
	}
	s.dirty = true
	if !s.flushPending {
		s.flushPending = true
		time.AfterFunc(s.publishGap-since, s.flushPublish)
	}
}

// publishGapFactor bounds table rebuilds to about 1/(1+factor) of a core.
const publishGapFactor = 20

// maxPublishGap bounds how long a player's change may wait for a rebuild.
const maxPublishGap = 50 * time.Millisecond

// flushPublish publishes coalesced changes that are still unpublished.
func (s *Server) flushPublish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushPending = false
	if s.dirty {
		s.publishLocked()
	}
}

// publishLocked rebuilds the route table from the registry and publishes
// it now. Tables are immutable, so this is a full rebuild: O(sessions).
func (s *Server) publishLocked() {
	start := time.Now()
	s.version++
	b := route.NewBuilder(s.version, s.nextID, s.nextSt)
	for _, st := range s.streams {
		rs := route.Stream{ID: st.id, KeyframeCache: st.kfCache}
		pub := st.publisher
		if pub != nil {
			rs.Publisher = pub.id
		}
		rs.Players = make([]route.SessionID, 0, len(st.players))
		for p := range st.players {
			rs.Players = append(rs.Players, p.id)
		}
		b.AddStream(rs)
	}
	for _, ss := range s.sessions {
		rs := route.Session{
			ID: ss.id, Epoch: ss.epoch, Role: ss.role, Stream: ss.stream.id,
			Peer: ss.peer, Keys: ss.keys, NACK: ss.nack, Tracks: ss.tracks, TWCCExt: ss.twccExt,
			Core: route.CoreOfUfrag(ss.localUfrag), Virtual: ss.virtual,
		}
		if !ss.virtual {
			rs.ICEUsername, rs.ICEKey, rs.Seen = ss.iceUser, ss.localPwd, &ss.lastSeen
		}
		if ss.role == route.RolePlayer {
			rs.Tracks = playerTracks(ss)
		}
		b.AddSession(rs, ss.addrs...)
	}
	s.fp.Publish(b.Table())
	s.counts.TablesPublished++
	for i, r := range s.replies {
		_ = s.fp.WriteTo(r.b, r.to)
		r.ss.addrPending = false
		s.replies[i] = stunReply{}
	}
	s.replies = s.replies[:0]
	s.dirty = false
	s.published = time.Now()
	s.publishGap = min(publishGapFactor*s.published.Sub(start), maxPublishGap)
}

// routeCodec names the codecs whose keyframes the fastpath recognises.
func routeCodec(name string) route.Codec {
	switch name {
	case sdpneg.CodecH264:
		return route.CodecH264
	case sdpneg.CodecH265:
		return route.CodecH265
	case sdpneg.CodecVP8:
		return route.CodecVP8
	case sdpneg.CodecVP9:
		return route.CodecVP9
	case sdpneg.CodecAV1:
		return route.CodecAV1
	}
	return route.CodecOther
}

// playerTracks keeps only the kinds whose codec matches what the publisher
// sends now: a player negotiated against the default description (H.264)
// gets nothing from a VP8 publisher rather than undecodable packets.
func playerTracks(ss *session) [route.NumKinds]route.Track {
	t := ss.tracks
	pub := ss.stream.publisher
	for k := range t {
		if pub != nil && pub.codecs[k] != ss.codecs[k] {
			t[k] = route.Track{}
		}
	}
	return t
}

// streamDescLocked is what a player negotiates against: the publisher's
// codecs, or SRS's default description when nobody publishes yet (#2362).
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
