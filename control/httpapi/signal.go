package httpapi

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxOfferBytes bounds an offer body; real offers are a few kilobytes.
const maxOfferBytes = 256 << 10

func (a *API) handleWHIP(forcePlay bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.cors(w, r)
		if err := a.admit(r, r.Method == http.MethodPost); err != nil {
			a.writeError(w, r, err)
			return
		}
		switch r.Method {
		case http.MethodOptions:
			if !a.opts.Crossdomain {
				a.writeError(w, r, Errorf(http.StatusMethodNotAllowed, "crossdomain is off"))
				return
			}
			w.Header().Set("Accept-Post", "application/sdp")
			w.WriteHeader(http.StatusOK)
		case http.MethodPost:
			a.postWHIP(w, r, forcePlay || r.URL.Query().Get("action") == "play")
		case http.MethodDelete:
			a.deleteSession(w, r)
		case http.MethodPatch:
			a.patchSession(w, r)
		default:
			w.Header().Set("Allow", "POST, DELETE, PATCH, OPTIONS")
			a.writeError(w, r, Errorf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
		}
	}
}

func (a *API) postWHIP(w http.ResponseWriter, r *http.Request, play bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			a.writeError(w, r, Errorf(http.StatusUnsupportedMediaType, "content type %q is not application/sdp", ct))
			return
		}
	}
	limit := a.opts.Limits.SDPSize
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	switch {
	case err != nil:
		a.writeError(w, r, Errorf(http.StatusBadRequest, "offer body unreadable: %v", err))
		return
	case len(body) > limit:
		a.writeError(w, r, LimitError(http.StatusRequestEntityTooLarge, LimitSDPSize, 0,
			"offer larger than %d bytes (limits.sdp_size)", limit))
		return
	}
	bodyRead(w)
	if err := a.checkBearer(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fanout"`)
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	o := Offer{
		ClientIP: clientIP(r), Param: r.URL.RawQuery, Play: play,
		Vhost: cmp.Or(q.Get("vhost"), q.Get("domain"), hostOnly(r.Host)),
		App:   cmp.Or(q.Get("app"), "live"), Stream: cmp.Or(q.Get("stream"), "livestream"),
		EIP: cmp.Or(q.Get("eip"), q.Get("candidate")), APIHost: cmp.Or(q.Get("vhost"), q.Get("domain"), r.Host),
		Ufrag: q.Get("ice-ufrag"), Pwd: q.Get("ice-pwd"),
		VideoCodec: cmp.Or(q.Get("codec"), q.Get("vcodec")), AudioCodec: q.Get("acodec"), SDP: body,
		Layer: q.Get("layer"), Temporal: temporalParam(q.Get("temporal")),
	}
	if ip, limited := a.sourceKey(r); limited {
		o.Source = ip
	}
	ans, err := a.offer(r, o)
	if a.writeRedirect(w, r, err) {
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", ans.Location)
	h.Set("ETag", ans.ETag)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	if ans.LayerURL != "" {
		h.Add("Link", "<"+ans.LayerURL+">; rel=\""+LayerRel+"\"")
	}
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(ans.SDP)
}

// offer validates what the registry trusts (names, credentials) and hands
// the offer over.
func (a *API) offer(r *http.Request, o Offer) (*Answer, error) {
	if err := checkCredentials(o.Ufrag, o.Pwd); err != nil {
		return nil, err
	}
	if o.Temporal < 0 || o.Temporal > 8 {
		return nil, Errorf(http.StatusBadRequest, "temporal must be a temporal layer id 0…7")
	}
	if !validLayer(o.Layer) {
		return nil, Errorf(http.StatusBadRequest, "layer %q is not h, m, l or a RID", o.Layer)
	}
	if a.opts.VhostOf != nil {
		o.Vhost = a.opts.VhostOf(o.Vhost)
	}
	if !validName(o.App) || !validName(o.Stream) {
		return nil, Errorf(http.StatusBadRequest, "app %q or stream %q has characters outside [A-Za-z0-9._~-]", o.App, o.Stream)
	}
	if err := a.place(r, o); err != nil {
		return nil, err
	}
	return a.reg.Offer(r.Context(), o)
}

// sessionOf finds the session a DELETE or PATCH names by its Location query.
func (a *API) sessionOf(r *http.Request) (name string, s Session, ok bool) {
	name = r.URL.Query().Get("session")
	if ufrag, _, _ := strings.Cut(name, ":"); ufrag == "" {
		return name, Session{}, false
	}
	s, ok = a.reg.Session(name)
	return name, s, ok
}

// deleteSession ends the session named by the Location query.
func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	name, s, ok := a.sessionOf(r)
	switch {
	case !ok:
		a.writeError(w, r, Errorf(http.StatusNotFound, "session %q not found", name))
		return
	case subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(s.Token)) != 1:
		a.writeError(w, r, Errorf(http.StatusForbidden, "token does not match the session"))
		return
	}
	a.reg.End(name, "http delete")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// patchSession handles trickle ICE (RFC 9725 §4.4). Fanout is ICE-lite: it
// learns client addresses from their checks, so trickled candidates are
// accepted and not needed; an ICE restart is not supported (422).
func (a *API) patchSession(w http.ResponseWriter, r *http.Request) {
	name, s, ok := a.sessionOf(r)
	if !ok || subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(s.Token)) != 1 {
		a.writeError(w, r, Errorf(http.StatusNotFound, "session %q not found", name))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		a.writeError(w, r, Errorf(http.StatusUnsupportedMediaType, "PATCH needs application/trickle-ice-sdpfrag"))
		return
	}
	switch m := r.Header.Get("If-Match"); {
	case m == "":
		a.writeError(w, r, Errorf(http.StatusPreconditionRequired, "PATCH needs If-Match"))
	case m == "*":
		a.writeError(w, r, Errorf(http.StatusUnprocessableEntity, "ICE restart is not supported"))
	case m != s.ETag:
		a.writeError(w, r, Errorf(http.StatusPreconditionFailed, "ETag does not match"))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// legacyRequest is the JSON body of SRS's /rtc/v1/publish/ and /rtc/v1/play/.
type legacyRequest struct {
	API       string `json:"api"`
	StreamURL string `json:"streamurl"`
	ClientIP  string `json:"clientip"`
	SDP       string `json:"sdp"`
	TID       string `json:"tid"`
}

func (a *API) handleLegacy(play bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.cors(w, r)
		if err := a.admit(r, r.Method == http.MethodPost); err != nil {
			a.writeError(w, r, err)
			return
		}
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusOK)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			a.writeError(w, r, Errorf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
			return
		}
		ans, err := a.legacy(w, r, play)
		if a.writeRedirect(w, r, err) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "close")
		if err != nil {
			status := statusOf(err)
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "5")
			}
			a.refuse(r, status, err)
			retryAfter(w, err)
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": status, "msg": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"code": 0, "server": a.opts.ServerID, "service": a.opts.ServerID, "pid": fmt.Sprint(os.Getpid()),
			"sdp": string(ans.SDP), "sessionid": ans.Session,
		})
	}
}

func (a *API) legacy(w http.ResponseWriter, r *http.Request, play bool) (*Answer, error) {
	var lr legacyRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(a.opts.Limits.BodySize)+1))
	if err != nil || len(body) > a.opts.Limits.BodySize {
		return nil, LimitError(http.StatusRequestEntityTooLarge, LimitBodySize, 0,
			"request body unreadable or larger than %d bytes (limits.http_body_size)", a.opts.Limits.BodySize)
	}
	if err := json.Unmarshal(body, &lr); err != nil {
		return nil, Errorf(http.StatusBadRequest, "request body is not JSON: %v", err)
	}
	bodyRead(w)
	if len(lr.SDP) > a.opts.Limits.SDPSize {
		return nil, LimitError(http.StatusRequestEntityTooLarge, LimitSDPSize, 0,
			"offer larger than %d bytes (limits.sdp_size)", a.opts.Limits.SDPSize)
	}
	if lr.SDP == "" || lr.StreamURL == "" {
		return nil, Errorf(http.StatusBadRequest, "sdp and streamurl are required")
	}
	u, err := url.Parse(lr.StreamURL)
	if err != nil || u.Host == "" {
		return nil, Errorf(http.StatusBadRequest, "streamurl %q is not webrtc://host/app/stream", lr.StreamURL)
	}
	app, stream, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app == "" || stream == "" {
		return nil, Errorf(http.StatusBadRequest, "streamurl %q has no app/stream", lr.StreamURL)
	}
	q, sq := r.URL.Query(), u.Query()
	o := Offer{
		Play: play, Vhost: cmp.Or(sq.Get("vhost"), sq.Get("domain"), u.Hostname()), App: app, Stream: stream,
		EIP:     cmp.Or(q.Get("eip"), q.Get("candidate"), sq.Get("eip"), sq.Get("candidate")),
		APIHost: u.Host, VideoCodec: cmp.Or(q.Get("codec"), sq.Get("codec")), SDP: []byte(lr.SDP),
		ClientIP: cmp.Or(lr.ClientIP, clientIP(r)), Param: u.RawQuery,
	}
	if ip, limited := a.sourceKey(r); limited {
		o.Source = ip
	}
	if !play {
		// SRS tags WebRTC publishers so hooks can tell them apart.
		o.Param = strings.TrimPrefix(o.Param+"&upstream=rtc", "&")
	}
	return a.offer(r, o)
}

// checkBearer enforces http_api.auth.bearer_token on WHIP/WHEP.
func (a *API) checkBearer(r *http.Request) error {
	if a.opts.BearerToken == "" {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(a.opts.BearerToken)) != 1 {
		return Errorf(http.StatusUnauthorized, "a valid Bearer token is required")
	}
	return nil
}

// checkCredentials applies SRS's bounds on forced ICE credentials (#3837).
func checkCredentials(ufrag, pwd string) error {
	if ufrag != "" && (len(ufrag) < 4 || len(ufrag) > 32) {
		return Errorf(http.StatusBadRequest, "ice-ufrag must be 4 to 32 characters")
	}
	if pwd != "" && (len(pwd) < 22 || len(pwd) > 32) {
		return Errorf(http.StatusBadRequest, "ice-pwd must be 22 to 32 characters")
	}
	return nil
}

// clientIP is the peer of the HTTP request, or what a proxy says it is.
func clientIP(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		ip, _, _ := strings.Cut(f, ",")
		return strings.TrimSpace(ip)
	}
	if ip := r.Header.Get("X-Real-IP"); ip != "" {
		return ip
	}
	return hostOnly(r.RemoteAddr)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// validName keeps app and stream names to URL-safe characters, so they
// can go into SDP, Location and hook bodies unescaped.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._~-", c)
		if !ok {
			return false
		}
	}
	return true
}

// bodyRead lifts the HTTP server's read deadline (limits.http_read_timeout)
// once the request is read: it bounds a slow client, not the hooks and
// negotiation after, and net/http cancels the request's context when a
// read deadline passes during the handler.
func bodyRead(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}
