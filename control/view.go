package control

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fanout/fanout/control/httpapi"
	"github.com/fanout/fanout/fastpath/route"
)

// StreamInfo is one entry of /api/v1/streams, in SRS's shape.
type StreamInfo = httpapi.StreamInfo

// ClientInfo is one entry of /api/v1/clients, in SRS's shape.
type ClientInfo = httpapi.ClientInfo

// apiView is the registry as the HTTP layer sees it (httpapi.Registry).
type apiView struct{ s *Server }

func (a apiView) Offer(ctx context.Context, o httpapi.Offer) (*httpapi.Answer, error) {
	ans, err := a.s.negotiate(ctx, o)
	return ans, withStatus(err)
}

func (a apiView) Session(name string) (httpapi.Session, bool) {
	ss := a.s.byName(name)
	if ss == nil {
		return httpapi.Session{}, false
	}
	return httpapi.Session{Token: ss.token, ETag: ss.etag}, true
}

func (a apiView) End(name, reason string) {
	if ss := a.s.byName(name); ss != nil {
		a.s.end(ss, reason)
	}
}

func (a apiView) Streams() []httpapi.StreamInfo { return a.s.Streams() }
func (a apiView) Clients() []httpapi.ClientInfo { return a.s.Clients() }
func (a apiView) Kick(clientID string) bool     { return a.s.Kick(clientID) }

func (a apiView) SetLayer(name, token, layer string) error {
	return withStatus(a.s.SetLayer(name, token, layer))
}

func (a apiView) SetTemporal(name, token string, tid int) error {
	return withStatus(a.s.SetTemporal(name, token, tid))
}

func (a apiView) Vhosts() []httpapi.Vhost {
	if a.s.cfg.Vhosts == nil {
		return nil
	}
	var out []httpapi.Vhost
	for _, n := range a.s.cfg.Vhosts() {
		v := httpapi.Vhost{Name: n, Enabled: a.s.cfg.Vhost(n).Enabled}
		if a.s.cfg.HLS != nil {
			v.HLS, v.HLSFragment = a.s.cfg.HLS(n)
		}
		out = append(out, v)
	}
	return out
}

// Summary is data.fanout of /api/v1/summaries: control's counters, the
// live sessions and streams, refusals by status, and Config.Summary.
func (a apiView) Summary() map[string]any {
	counts, live := a.s.Stats()
	data := map[string]any{"sessions": live, "streams": len(a.s.Streams()), "control": counts,
		"http_refusals": a.s.RefusalsByStatus()}
	if a.s.cfg.Summary != nil {
		maps.Copy(data, a.s.cfg.Summary())
	}
	return data
}

// byName finds a live session by its Location name (localUfrag:remoteUfrag).
func (s *Server) byName(name string) *session {
	ufrag, _, _ := strings.Cut(name, ":")
	s.mu.Lock()
	defer s.unlock()
	return s.byUfrag[ufrag]
}

// Streams lists the live streams in SRS's shape.
func (s *Server) Streams() []StreamInfo {
	type ids struct {
		publisher route.SessionID
		players   []route.SessionID
	}
	now := time.Now()
	s.mu.Lock()
	out := make([]StreamInfo, 0, len(s.streams))
	sessions := make([]ids, 0, len(s.streams))
	for _, st := range s.streams {
		si, n := st.infoLocked(now), ids{}
		if p := st.publisher; p != nil {
			n.publisher = p.id
		}
		for p := range st.players {
			n.players = append(n.players, p.id)
		}
		out, sessions = append(out, si), append(sessions, n)
	}
	s.unlock()
	for i, n := range sessions { // the fastpath's counters, read outside mu
		if n.publisher != 0 {
			out[i].RecvBytes = s.bytesOf(n.publisher)
		}
		for _, p := range n.players {
			out[i].SendBytes += s.bytesOf(p)
		}
	}
	slices.SortFunc(out, func(x, y StreamInfo) int { return cmp.Compare(x.URL, y.URL) })
	return out
}

// infoLocked describes the stream, without the fastpath's byte counters.
func (st *stream) infoLocked(now time.Time) StreamInfo {
	si := StreamInfo{
		ID: st.sid, Name: st.name, Vhost: st.vhost, VhostID: httpapi.VhostID(st.vhost), App: st.app,
		TcURL: "webrtc://" + st.vhost + "/" + st.app, URL: "/" + st.app + "/" + st.name,
		LiveMs: now.UnixMilli(), Clients: len(st.players),
	}
	p := st.publisher
	if p == nil {
		return si
	}
	si.Clients++
	si.Publish.Active, si.Publish.CID = true, p.cid
	if p.desc != nil && p.desc.Video != nil {
		si.Video = httpapi.Video(p.desc.Video.Name, p.desc.Video.Fmtp)
	}
	if p.desc != nil && p.desc.Audio != nil {
		si.Audio = httpapi.Audio(p.desc.Audio.Name, p.desc.Audio.ClockRate, p.desc.Audio.Channels)
	}
	return si
}

// Clients lists the sessions in SRS's shape, with Fanout's session fields.
func (s *Server) Clients() []ClientInfo {
	s.mu.Lock()
	out := make([]ClientInfo, 0, len(s.sessions))
	ids := make([]route.SessionID, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out, ids = append(out, ss.infoLocked()), append(ids, ss.id)
	}
	s.unlock()
	for i, id := range ids { // the fastpath's counters, read outside mu
		if q, ok := s.quality(id); ok {
			out[i].Quality = &q
			fillLayer(out[i].Layer, q)
			var n uint64
			for _, t := range q.Tracks {
				n += t.Bytes
			}
			if out[i].Publish {
				out[i].RecvBytes = n
			} else {
				out[i].SendBytes = n
			}
		}
	}
	slices.SortFunc(out, func(x, y ClientInfo) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// infoLocked describes the session, without the fastpath's counters.
func (ss *session) infoLocked() ClientInfo {
	st := ss.stream
	ci := ClientInfo{
		ID: ss.cid, Vhost: st.vhost, VhostID: httpapi.VhostID(st.vhost), Stream: st.sid, IP: ss.clientIP,
		TcURL: "webrtc://" + st.vhost + "/" + st.app, URL: "/" + st.app + "/" + st.name,
		Name: st.name, Type: "rtc-" + ss.kind(), Publish: ss.role == route.RolePublisher,
		Alive: time.Since(ss.created).Seconds(), Session: ss.sessionName(), SRTP: ss.profile,
	}
	if ss.peer.IsValid() {
		ci.Peer = ss.peer.String()
	}
	ci.Layer = ss.layerInfoLocked()
	if ss.virtual {
		ci.Type, ci.TcURL = "fmle-publish", "rtmp://"+st.vhost+"/"+st.app // SRS's RTMP publisher
	}
	return ci
}

// Kick ends the session of a client id at once; false if unknown.
func (s *Server) Kick(cid string) bool {
	s.mu.Lock()
	var found *session
	for _, ss := range s.sessions {
		if ss.cid == cid {
			found = ss
			break
		}
	}
	s.unlock()
	if found == nil {
		return false
	}
	s.end(found, "kicked by api")
	return true
}

// Players counts the player sessions of every stream: a cluster node's
// load, asked on each WHEP offer when the cluster caps players, so it
// walks streams, not sessions, and reads no fastpath counter.
func (s *Server) Players() int {
	s.mu.Lock()
	defer s.unlock()
	n := 0
	for _, st := range s.streams {
		n += len(st.players)
	}
	return n
}
