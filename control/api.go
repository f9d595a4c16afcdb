package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// maxOfferBytes bounds an offer body; real offers are a few kilobytes.
const maxOfferBytes = 256 << 10

// Register mounts the signaling endpoints on mux, at SRS's paths.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("/rtc/v1/whip/", s.handleWHIP(false))
	mux.HandleFunc("/rtc/v1/whep/", s.handleWHIP(true))
	mux.HandleFunc("/rtc/v1/whip-play/", s.handleWHIP(true))
	mux.HandleFunc("/rtc/v1/publish/", s.handleLegacy(false))
	mux.HandleFunc("/rtc/v1/play/", s.handleLegacy(true))
}

// apiError is an error with its HTTP status (RFC 9725 §4.2 asks for
// meaningful 4xx codes; SRS before 7.0.121 just closed the connection).
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func httpErr(status int, format string, args ...any) error {
	return &apiError{status: status, err: fmt.Errorf(format, args...)}
}

// statusOf maps an error to its status code.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.Is(err, sdpneg.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, sdpneg.ErrUnsupported):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrStreamBusy):
		return http.StatusConflict
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrRTCDisabled):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// writeError answers with the status and a one-line text/plain reason.
func writeError(w http.ResponseWriter, err error) {
	if statusOf(err) == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(statusOf(err))
	fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", " "))
}

// cors adds SRS's CORS headers when crossdomain is on and the request has
// an Origin, exposing what WHIP/WHEP clients must read.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Crossdomain || r.Header.Get("Origin") == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Headers", "*")
	h.Set("Access-Control-Allow-Methods", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Accept-Post")
	h.Set("Access-Control-Allow-Credentials", "false")
	h.Set("Access-Control-Request-Private-Network", "true")
}

func (s *Server) handleWHIP(forcePlay bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cors(w, r)
		switch r.Method {
		case http.MethodOptions:
			if !s.cfg.Crossdomain {
				writeError(w, httpErr(http.StatusMethodNotAllowed, "crossdomain is off"))
				return
			}
			w.Header().Set("Accept-Post", "application/sdp")
			w.WriteHeader(http.StatusOK)
		case http.MethodPost:
			play := forcePlay || r.URL.Query().Get("action") == "play"
			s.postWHIP(w, r, play)
		case http.MethodDelete:
			s.deleteSession(w, r)
		case http.MethodPatch:
			s.patchSession(w, r)
		default:
			w.Header().Set("Allow", "POST, DELETE, PATCH, OPTIONS")
			writeError(w, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
		}
	}
}

// offerRequest is one publish or play request, whichever API it came by.
type offerRequest struct {
	play                   bool
	vhost, app, stream     string
	eip, apiHost           string
	ufrag, pwd             string
	videoCodec, audioCodec string
	offer                  []byte
	clientIP, param        string
	cid                    string
}

func (s *Server) postWHIP(w http.ResponseWriter, r *http.Request, play bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			writeError(w, httpErr(http.StatusUnsupportedMediaType, "content type %q is not application/sdp", ct))
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil || len(body) > maxOfferBytes {
		writeError(w, httpErr(http.StatusBadRequest, "offer body unreadable or larger than %d bytes", maxOfferBytes))
		return
	}
	if err := s.checkBearer(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fanout"`)
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	req := offerRequest{
		clientIP: clientIP(r), param: r.URL.RawQuery,
		play: play, vhost: first(q.Get("vhost"), q.Get("domain"), hostOnly(r.Host)),
		app: first(q.Get("app"), "live"), stream: first(q.Get("stream"), "livestream"),
		eip: first(q.Get("eip"), q.Get("candidate")), apiHost: first(q.Get("vhost"), q.Get("domain"), r.Host),
		ufrag: q.Get("ice-ufrag"), pwd: q.Get("ice-pwd"),
		videoCodec: first(q.Get("codec"), q.Get("vcodec")), audioCodec: q.Get("acodec"), offer: body,
	}
	res, err := s.negotiate(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", res.location)
	h.Set("ETag", res.etag)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(res.answer)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

type negotiated struct {
	answer   []byte
	location string
	etag     string
	session  string
}

// negotiate runs an offer through validation, negotiation, registration
// and answer building.
func (s *Server) negotiate(ctx context.Context, req offerRequest) (*negotiated, error) {
	if err := checkCredentials(req.ufrag, req.pwd); err != nil {
		return nil, err
	}
	if s.cfg.VhostOf != nil {
		req.vhost = s.cfg.VhostOf(req.vhost)
	}
	if !validName(req.app) || !validName(req.stream) {
		return nil, httpErr(http.StatusBadRequest, "app %q or stream %q has characters outside [A-Za-z0-9._~-]", req.app, req.stream)
	}
	opts := s.cfg.Vhost(req.vhost)
	if !opts.Enabled {
		return nil, ErrRTCDisabled
	}
	offer, err := sdpneg.ParseOffer(req.offer)
	if err != nil {
		return nil, err
	}
	req.cid = randomString(8)
	if err := s.startHooks(ctx, req, opts.Hooks); err != nil {
		return nil, err
	}
	// Only publishers get transport-cc: Fanout sends them feedback, and
	// consumes none from players (no per-player bandwidth estimation).
	nopt := sdpneg.Options{VideoCodec: req.videoCodec, AudioCodec: req.audioCodec, NACK: opts.NACK,
		TWCC: opts.TWCC && !req.play}
	cands := candidate.Compute(s.cfg.Candidates, candidate.Request{EIP: req.eip, APIHost: req.apiHost}, s.candEnv)
	ss, neg, err := s.register(req, offer, nopt)
	if err != nil {
		return nil, err
	}
	answer, err := sdpneg.BuildAnswer(neg, sdpneg.AnswerParams{
		Ufrag: ss.localUfrag, Pwd: ss.localPwd, Fingerprint: s.fingerprint,
		Setup: ss.setup, Candidates: toSDP(cands), Play: req.play,
		SessionName: sessionTitle(req.play), StreamID: req.app + "/" + req.stream,
		SSRCs: ssrcsOf(ss), CNAME: randomString(16),
	})
	if err != nil {
		s.end(ss, "answer: "+err.Error())
		return nil, err
	}
	loc := "/rtc/v1/whip/?" + url.Values{
		"action": {"delete"}, "token": {ss.token}, "app": {req.app}, "stream": {req.stream},
		"session": {ss.sessionName()},
	}.Encode()
	ss.log.Info("session created", "candidates", len(cands), "setup", ss.setup)
	return &negotiated{answer: answer, location: loc, etag: ss.etag, session: ss.sessionName()}, nil
}

func toSDP(cs []candidate.Candidate) []sdpneg.Candidate {
	out := make([]sdpneg.Candidate, len(cs))
	for i, c := range cs {
		out[i] = sdpneg.Candidate{Host: c.Host, Port: c.Port, Proto: c.Proto}
	}
	return out
}

func sessionTitle(play bool) string {
	if play {
		return "FanoutPlaySession"
	}
	return "FanoutPublishSession"
}

func ssrcsOf(ss *session) map[sdpneg.Kind]uint32 {
	m := map[sdpneg.Kind]uint32{}
	for k, t := range ss.tracks {
		if t.SSRC != 0 {
			m[sdpneg.Kind(k)] = t.SSRC
		}
	}
	return m
}

// checkCredentials applies SRS's bounds on forced ICE credentials (#3837).
func checkCredentials(ufrag, pwd string) error {
	if ufrag != "" && (len(ufrag) < 4 || len(ufrag) > 32) {
		return httpErr(http.StatusBadRequest, "ice-ufrag must be 4 to 32 characters")
	}
	if pwd != "" && (len(pwd) < 22 || len(pwd) > 32) {
		return httpErr(http.StatusBadRequest, "ice-pwd must be 22 to 32 characters")
	}
	return nil
}

// register negotiates against the stream's current description and adds
// the session, atomically with the one-publisher check.
func (s *Server) register(req offerRequest, offer *sdpneg.Offer, nopt sdpneg.Options) (*session, *sdpneg.Negotiated, error) {
	role := route.RolePublisher
	if req.play {
		role = route.RolePlayer
	}
	dtlsRole := s.cfg.Vhost(req.vhost).DTLSRole
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.draining {
		return nil, nil, httpErr(http.StatusServiceUnavailable, "server is draining for shutdown")
	}
	st := s.streamLocked(req.vhost, req.app, req.stream)
	var neg *sdpneg.Negotiated
	var err error
	switch {
	case req.play:
		neg, err = sdpneg.NegotiatePlay(offer, st.descLocked(), nopt)
	case st.publisher != nil:
		err = fmt.Errorf("%w: %s", ErrStreamBusy, st.key)
	default:
		neg, err = sdpneg.NegotiatePublish(offer, nopt)
	}
	if err != nil {
		if st.publisher == nil && len(st.players) == 0 {
			delete(s.streams, st.key)
			s.freeSt = append(s.freeSt, st.id)
		}
		return nil, nil, err
	}
	ss := s.newSessionLocked(role, st, req.ufrag, req.pwd, offer.ICEUfrag)
	ss.remoteFP = offer.Fingerprint
	ss.cid, ss.clientIP, ss.param = req.cid, req.clientIP, req.param
	ss.setup = sdpneg.ChooseSetup(offer.Setup, dtlsRole)
	ss.nack = nopt.NACK
	s.applyTracksLocked(ss, neg)
	if req.play {
		st.players[ss] = struct{}{}
	} else {
		st.publisher = ss
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
		if t.TWCCExt != 0 && ss.role == route.RolePublisher {
			ss.twccExt = t.TWCCExt // one id per BUNDLE transport (RFC 8285 §6)
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

// deleteSession ends the session named by the Location query.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ufrag, _, _ := strings.Cut(q.Get("session"), ":")
	s.mu.Lock()
	ss := s.byUfrag[ufrag]
	s.mu.Unlock()
	if ss == nil || ufrag == "" {
		writeError(w, fmt.Errorf("%w: %q", ErrNotFound, q.Get("session")))
		return
	}
	if q.Get("token") != ss.token {
		writeError(w, httpErr(http.StatusForbidden, "token does not match the session"))
		return
	}
	s.end(ss, "http delete")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// patchSession handles trickle ICE (RFC 9725 §4.4). Fanout is ICE-lite: it
// learns client addresses from their checks, so trickled candidates are
// accepted and not needed; an ICE restart is not supported (422).
func (s *Server) patchSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ufrag, _, _ := strings.Cut(q.Get("session"), ":")
	s.mu.Lock()
	ss := s.byUfrag[ufrag]
	s.mu.Unlock()
	if ss == nil || ufrag == "" || q.Get("token") != ss.token {
		writeError(w, fmt.Errorf("%w: %q", ErrNotFound, q.Get("session")))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		writeError(w, httpErr(http.StatusUnsupportedMediaType, "PATCH needs application/trickle-ice-sdpfrag"))
		return
	}
	switch m := r.Header.Get("If-Match"); {
	case m == "":
		writeError(w, httpErr(http.StatusPreconditionRequired, "PATCH needs If-Match"))
		return
	case m == "*":
		writeError(w, httpErr(http.StatusUnprocessableEntity, "ICE restart is not supported"))
		return
	case m != ss.etag:
		writeError(w, httpErr(http.StatusPreconditionFailed, "ETag does not match"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// legacyRequest is the JSON body of SRS's /rtc/v1/publish/ and /rtc/v1/play/.
type legacyRequest struct {
	API       string `json:"api"`
	StreamURL string `json:"streamurl"`
	ClientIP  string `json:"clientip"`
	SDP       string `json:"sdp"`
	TID       string `json:"tid"`
}

func (s *Server) handleLegacy(play bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cors(w, r)
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusOK)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			writeError(w, httpErr(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
			return
		}
		res, err := s.legacy(r, play)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(statusOf(err))
			_ = json.NewEncoder(w).Encode(map[string]any{"code": statusOf(err), "msg": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"code": 0, "server": "fanout", "service": "fanout", "pid": fmt.Sprint(os.Getpid()),
			"sdp": string(res.answer), "sessionid": res.session,
		})
	}
}

func (s *Server) legacy(r *http.Request, play bool) (*negotiated, error) {
	var lr legacyRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxOfferBytes)).Decode(&lr); err != nil {
		return nil, httpErr(http.StatusBadRequest, "request body is not JSON: %v", err)
	}
	if lr.SDP == "" || lr.StreamURL == "" {
		return nil, httpErr(http.StatusBadRequest, "sdp and streamurl are required")
	}
	u, err := url.Parse(lr.StreamURL)
	if err != nil || u.Host == "" {
		return nil, httpErr(http.StatusBadRequest, "streamurl %q is not webrtc://host/app/stream", lr.StreamURL)
	}
	app, stream, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app == "" || stream == "" {
		return nil, httpErr(http.StatusBadRequest, "streamurl %q has no app/stream", lr.StreamURL)
	}
	q, sq := r.URL.Query(), u.Query()
	req := offerRequest{
		play: play, vhost: first(sq.Get("vhost"), sq.Get("domain"), u.Hostname()), app: app, stream: stream,
		eip:     first(q.Get("eip"), q.Get("candidate"), sq.Get("eip"), sq.Get("candidate")),
		apiHost: u.Host, videoCodec: first(q.Get("codec"), sq.Get("codec")), offer: []byte(lr.SDP),
		clientIP: first(lr.ClientIP, clientIP(r)), param: u.RawQuery,
	}
	if !play {
		// SRS tags WebRTC publishers so hooks can tell them apart.
		req.param = strings.TrimPrefix(req.param+"&upstream=rtc", "&")
	}
	return s.negotiate(r.Context(), req)
}

// checkBearer enforces http_api.auth.bearer_token on WHIP/WHEP.
func (s *Server) checkBearer(r *http.Request) error {
	if s.cfg.BearerToken == "" {
		return nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.BearerToken)) != 1 {
		return httpErr(http.StatusUnauthorized, "a valid Bearer token is required")
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

// startHooks runs on_publish or on_play before the answer.
func (s *Server) startHooks(ctx context.Context, req offerRequest, h Hooks) error {
	urls, action := h.OnPublish, "on_publish"
	if req.play {
		urls, action = h.OnPlay, "on_play"
	}
	if !h.Enabled || len(urls) == 0 {
		return nil
	}
	return s.callHooks(ctx, urls, hookEvent{
		ServerID: s.cfg.ServerID, Action: action, ClientID: req.cid, IP: req.clientIP,
		Vhost: req.vhost, App: req.app, Stream: req.stream, Param: req.param,
		TcURL: "webrtc://" + req.vhost + "/" + req.app, StreamURL: "/" + req.app + "/" + req.stream,
	})
}
