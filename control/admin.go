package control

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

const rolePublisher = route.RolePublisher

// Version is reported by /api/v1/versions.
const (
	VersionMajor, VersionMinor, VersionRevision = 1, 0, 0
	Version                                     = "1.0.0"
)

// StreamInfo is one entry of /api/v1/streams, in SRS's shape.
type StreamInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Vhost   string `json:"vhost"`
	App     string `json:"app"`
	TcURL   string `json:"tcUrl"`
	URL     string `json:"url"`
	LiveMs  int64  `json:"live_ms"`
	Clients int    `json:"clients"`
	Publish struct {
		Active bool   `json:"active"`
		CID    string `json:"cid,omitempty"`
	} `json:"publish"`
	Video *CodecInfo `json:"video"`
	Audio *CodecInfo `json:"audio"`
}

// CodecInfo names a track's codec.
type CodecInfo struct {
	Codec string `json:"codec"`
}

// ClientInfo is one entry of /api/v1/clients.
type ClientInfo struct {
	ID      string  `json:"id"`
	Vhost   string  `json:"vhost"`
	Stream  string  `json:"stream"`
	IP      string  `json:"ip"`
	TcURL   string  `json:"tcUrl"`
	URL     string  `json:"url"`
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Publish bool    `json:"publish"`
	Alive   float64 `json:"alive"`
	Session string  `json:"session"`
	Peer    string  `json:"peer,omitempty"`
	SRTP    string  `json:"srtp,omitempty"`
	// Quality is the fastpath's media counters of the session (packets,
	// loss, jitter, NACKs, PLIs, RTT), refreshed every second.
	Quality *route.SessionQuality `json:"quality,omitempty"`
}

// Streams lists the live streams.
func (s *Server) Streams() []StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]StreamInfo, 0, len(s.streams))
	for _, st := range s.streams {
		si := StreamInfo{
			ID: st.sid, Name: st.name, Vhost: st.vhost, App: st.app,
			TcURL: "webrtc://" + st.vhost + "/" + st.app, URL: "/" + st.app + "/" + st.name,
			LiveMs: now.Sub(st.created).Milliseconds(), Clients: len(st.players),
		}
		if p := st.publisher; p != nil {
			si.Clients++
			si.Publish.Active, si.Publish.CID = true, p.cid
			if c := p.codecs[route.KindVideo]; c != "" {
				si.Video = &CodecInfo{Codec: c}
			}
			if c := p.codecs[route.KindAudio]; c != "" {
				si.Audio = &CodecInfo{Codec: c}
			}
		}
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// Clients lists the sessions.
func (s *Server) Clients() []ClientInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClientInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		ci := ClientInfo{
			ID: ss.cid, Vhost: ss.stream.vhost, Stream: ss.stream.sid, IP: ss.clientIP,
			TcURL: "webrtc://" + ss.stream.vhost + "/" + ss.stream.app, URL: "/" + ss.stream.app + "/" + ss.stream.name,
			Name: ss.stream.name, Type: "rtc-" + ss.kind(), Publish: ss.role == rolePublisher,
			Alive: time.Since(ss.created).Seconds(), Session: ss.sessionName(), SRTP: ss.profile,
		}
		if ss.peer.IsValid() {
			ci.Peer = ss.peer.String()
		}
		if qs, ok := s.fp.(interface {
			SessionQuality(route.SessionID) (route.SessionQuality, bool)
		}); ok {
			if q, ok := qs.SessionQuality(ss.id); ok {
				ci.Quality = &q
			}
		}
		if ss.virtual {
			ci.Type, ci.TcURL = "fmle-publish", "rtmp://"+ss.stream.vhost+"/"+ss.stream.app // SRS's RTMP publisher
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
	s.mu.Unlock()
	if found == nil {
		return false
	}
	s.end(found, "kicked by api")
	return true
}

// RegisterAPI mounts SRS's JSON API (/api/v1/…) and /healthz.
func (s *Server) RegisterAPI(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/versions", s.apiHandler(s.apiVersions))
	mux.HandleFunc("/api/v1/summaries", s.apiHandler(s.apiSummaries))
	mux.HandleFunc("/api/v1/streams/", s.apiHandler(s.apiStreams))
	mux.HandleFunc("/api/v1/clients/", s.apiHandler(s.apiClients))
	mux.HandleFunc("/api/v1/vhosts/", s.apiHandler(s.apiVhosts))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
}

type apiFunc func(r *http.Request, id string) (map[string]any, error)

// apiHandler adds CORS, Basic auth (http_api.auth, only under /api/ as in
// SRS), the {"code":0,"server":…} envelope and error statuses.
func (s *Server) apiHandler(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cors(w, r)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		if a := s.cfg.APIAuth; a.Enabled {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(a.Username)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(a.Password)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="fanout"`)
				writeError(w, httpErr(http.StatusUnauthorized, "http_api.auth: bad or missing credentials"))
				return
			}
		}
		id := ""
		if i := strings.LastIndex(strings.TrimSuffix(r.URL.Path, "/"), "/"); i >= 0 {
			id = strings.TrimSuffix(r.URL.Path, "/")[i+1:]
		}
		if id == "streams" || id == "clients" || id == "vhosts" {
			id = ""
		}
		data, err := fn(r, id)
		if err != nil {
			writeError(w, err)
			return
		}
		body := map[string]any{"code": 0, "server": s.cfg.ServerID, "service": s.cfg.ServerID, "pid": os.Getpid()}
		for k, v := range data {
			body[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}
}

func (s *Server) apiVersions(r *http.Request, _ string) (map[string]any, error) {
	if r.Method != http.MethodGet {
		return nil, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	return map[string]any{"data": map[string]any{
		"major": VersionMajor, "minor": VersionMinor, "revision": VersionRevision, "version": Version,
	}}, nil
}

func (s *Server) apiSummaries(r *http.Request, _ string) (map[string]any, error) {
	if r.Method != http.MethodGet {
		return nil, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	counts, live := s.Stats()
	data := map[string]any{
		"ok": true, "now_ms": time.Now().UnixMilli(),
		"sessions": live, "streams": len(s.Streams()), "control": counts,
	}
	if s.cfg.Summary != nil {
		for k, v := range s.cfg.Summary() {
			data[k] = v
		}
	}
	return map[string]any{"data": data}, nil
}

func (s *Server) apiStreams(r *http.Request, id string) (map[string]any, error) {
	if r.Method != http.MethodGet {
		return nil, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	all := s.Streams()
	if id == "" {
		return map[string]any{"streams": all}, nil
	}
	for _, st := range all {
		if st.ID == id {
			return map[string]any{"stream": st}, nil
		}
	}
	return nil, httpErr(http.StatusNotFound, "stream %q not found", id)
}

func (s *Server) apiClients(r *http.Request, id string) (map[string]any, error) {
	switch {
	case r.Method == http.MethodDelete && id != "":
		if !s.Kick(id) {
			return nil, httpErr(http.StatusNotFound, "client %q not found", id)
		}
		return map[string]any{}, nil
	case r.Method != http.MethodGet:
		return nil, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	all := s.Clients()
	if id == "" {
		return map[string]any{"clients": all}, nil
	}
	for _, c := range all {
		if c.ID == id {
			return map[string]any{"client": c}, nil
		}
	}
	return nil, httpErr(http.StatusNotFound, "client %q not found", id)
}

func (s *Server) apiVhosts(r *http.Request, _ string) (map[string]any, error) {
	if r.Method != http.MethodGet {
		return nil, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	}
	var names []string
	if s.cfg.Vhosts != nil {
		names = s.cfg.Vhosts()
	}
	counts := map[string]int{}
	for _, st := range s.Streams() {
		counts[st.Vhost]++
	}
	out := make([]map[string]any, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]any{"name": n, "enabled": s.cfg.Vhost(n).Enabled, "streams": counts[n]})
	}
	return map[string]any{"vhosts": out}, nil
}
