package control

import (
	"time"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

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
	defer s.unlock()
	s.flushPending = false
	if s.dirty {
		s.publishLocked()
	}
}

// publishLocked rebuilds the route table from the registry; unlock hands
// it to the fastpath. Tables are immutable, so this is a full rebuild:
// O(sessions). The STUN answers held for addresses in it go out with it.
func (s *Server) publishLocked() {
	start := time.Now()
	s.version++
	b := route.NewBuilder(s.version, s.nextID, s.nextSt)
	for _, st := range s.streams {
		rs := route.Stream{ID: st.id, KeyframeCache: st.kfCache}
		if pub := st.publisher; pub != nil {
			rs.Publisher = pub.id
		}
		rs.Players = make([]route.SessionID, 0, len(st.players))
		for p := range st.players {
			rs.Players = append(rs.Players, p.id)
		}
		b.AddStream(rs)
	}
	for _, ss := range s.sessions {
		b.AddSession(routeSession(ss), ss.addrs...)
	}
	s.pending = b.Table()
	s.counts.TablesPublished++
	for _, r := range s.replies {
		r.ss.addrPending = false
	}
	s.dirty = false
	s.published = time.Now()
	s.publishGap = min(publishGapFactor*s.published.Sub(start), maxPublishGap)
}

// routeSession is a session as the fastpath sees it.
func routeSession(ss *session) route.Session {
	rs := route.Session{
		ID: ss.id, Epoch: ss.epoch, Role: ss.role, Stream: ss.stream.id,
		Peer: ss.peer, Keys: ss.keys, NACK: ss.nack, Tracks: ss.tracks, TWCCExt: ss.twccExt,
		DDExt: ss.ddExt,
		Core:  route.CoreOfUfrag(ss.localUfrag), Virtual: ss.virtual, Simulcast: ss.sim,
	}
	if !ss.virtual {
		rs.ICEUsername, rs.ICEKey, rs.Seen = ss.iceUser, ss.localPwd, &ss.lastSeen
	}
	if ss.role == route.RolePlayer {
		rs.Tracks = playerTracks(ss)
		rs.Temporal = ss.temporal
		if pub := ss.stream.publisher; pub != nil {
			rs.Layer = resolveLayer(ss.layer, &pub.sim)
			rs.LayerAuto = ss.layer == "" // no pinned layer: its loss picks (fastpath/layerauto.go)
		}
	}
	return rs
}

// unlock ends every critical section of s.mu. A table built under it goes
// to the fastpath after mu is released, with the STUN answers that waited
// for it; pubMu, taken before mu is dropped, keeps tables in build order.
// Queued Config.Peers changes go first, in the same order.
func (s *Server) unlock() {
	t, ops := s.pending, s.peerOps
	if t == nil && ops == nil {
		s.mu.Unlock()
		return
	}
	var replies []stunReply
	if t != nil { // answers wait for the table with their address
		replies, s.replies = s.replies, nil
	}
	s.pending, s.peerOps = nil, nil
	s.pubMu.Lock()
	s.mu.Unlock()
	for _, op := range ops { // before the answer: the client's DTLS must pass the shield
		if op.add {
			s.cfg.Peers.Add(op.addr)
		} else {
			s.cfg.Peers.Remove(op.addr)
		}
	}
	if t != nil {
		s.fp.Publish(t)
	}
	for _, r := range replies {
		_ = s.fp.WriteTo(r.b, r.to)
	}
	s.pubMu.Unlock()
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
