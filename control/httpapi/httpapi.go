// Package httpapi is Fanout's HTTP surface of the control plane: WHIP/WHEP
// (RFC 9725), SRS's legacy signaling (/rtc/v1/publish|play) and SRS's JSON
// API (/api/v1/…), with CORS, Bearer and Basic auth, and every refusal
// logged and counted by status.
//
// Who imports it: package control, which implements Registry and mounts the
// handlers (Server.Register, Server.RegisterAPI). httpapi declares what it
// needs of the registry (Registry, consumer-declared as in mediamtx) and
// imports neither control nor the fastpath, DTLS or ICE code, so its tests
// run over httptest with a fake registry.
//
// Limits (limits.go): per-source-IP token buckets for requests and offers
// (429), offer and body sizes (413), and for HTTP-FLV and HLS requests with
// a per-IP bound on open HTTP-FLV streams (live.go: LimitLive wraps the
// bridge's handler; IPRate and IPCount are the limiters cmd also puts on
// the RTMP listener); refusals over a limit are counted by
// limit name for /metrics, and the registry's capacity refusals (503) come
// back as *Error with Limit set and are counted the same way.
//
// Concurrency: an API is safe for concurrent requests; its only mutable
// state is the refusal counters (own mutex), each rate limiter's table
// (own mutex) and the CPU sample of /api/v1/summaries (own mutex). Registry calls are made without any lock
// held.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Registry is what the HTTP layer needs of the session and stream registry.
type Registry interface {
	// Offer negotiates an offer and registers its session. Errors carrying
	// an *Error keep their status; others answer 500.
	Offer(ctx context.Context, o Offer) (*Answer, error)
	// Session looks a session up by its Location name (localUfrag:remoteUfrag).
	Session(name string) (Session, bool)
	// End ends the named session (WHIP DELETE).
	End(name, reason string)
	Streams() []StreamInfo
	Clients() []ClientInfo
	// Kick ends the session of a client id; false if unknown.
	Kick(clientID string) bool
	// Vhosts lists the configured vhosts.
	Vhosts() []Vhost
	// Summary is Fanout's own counters, served under data.fanout of
	// /api/v1/summaries.
	Summary() map[string]any
	// SetLayer makes player name (with its token) follow a simulcast layer
	// ("h", "m", "l" or a RID): the WHEP layer extension (layer.go).
	SetLayer(name, token, layer string) error
	// SetTemporal caps a VP9 or AV1 SVC player's temporal layers at tid (-1: all).
	SetTemporal(name, token string, tid int) error
}

// Offer is one publish or play request, whichever API it came by.
type Offer struct {
	Play                   bool
	Vhost, App, Stream     string
	EIP, APIHost           string // candidate hints (eip=, the API's host)
	Ufrag, Pwd             string // forced ICE credentials, "" = generate
	VideoCodec, AudioCodec string
	SDP                    []byte
	ClientIP, Param        string // Param: the query string, for hooks
	Layer                  string // ?layer=: a player's simulcast layer, "h", "m", "l" or a RID
	Temporal               int    // ?temporal=N: VP9 or AV1 SVC, temporal layers up to N, as N+1; 0 = all
	// Source is the request's TCP peer as the per-IP limits key it (an
	// IPv6 address by its /64); invalid when it is exempt (loopback).
	Source netip.Addr
}

// Answer is a negotiated session.
type Answer struct {
	SDP      []byte
	Location string
	ETag     string
	Session  string // localUfrag:remoteUfrag
	LayerURL string // a player's WHEP layer-extension URL (Link rel LayerRel)
}

// Session is what DELETE and PATCH check a request against.
type Session struct {
	Token string
	ETag  string
}

// Vhost is a configured vhost for /api/v1/vhosts.
type Vhost struct {
	Name        string
	Enabled     bool
	HLS         bool
	HLSFragment time.Duration
}

// Options configure the HTTP layer.
type Options struct {
	Logger      *slog.Logger
	Crossdomain bool
	// ServerID names this node in API envelopes (SRS's "server" and "service").
	ServerID string
	// BasicAuth is http_api.auth: Basic auth on /api/ paths (SRS).
	BasicAuth struct {
		Enabled            bool
		Username, Password string
	}
	// BearerToken, when set, is required on WHIP/WHEP (RFC 9725 §4.5).
	BearerToken string
	// VhostOf maps a request's vhost to the name streams are registered
	// under; nil keeps it.
	VhostOf func(string) string
	// Placement, when set (cluster on), may send an offer to another node
	// (307) or refuse it before negotiation (placement.go).
	Placement Placement
	// Cluster, when set, is the data of /api/v1/cluster.
	Cluster func(ctx context.Context) (any, error)
	// Limits are the per-IP rates and the body sizes (limits.go).
	Limits Limits
}

// API serves the HTTP endpoints over a Registry.
type API struct {
	reg   Registry
	opts  Options
	log   *slog.Logger
	start time.Time

	mu       sync.Mutex
	refusals map[int]uint64
	limits   map[string]uint64    // refusals over a limit, by limit name
	limitLog map[string]time.Time // when each limit's refusal was last logged

	requests, sessions *IPRate  // nil when off
	live               *IPRate  // HTTP-FLV and HLS requests (live.go), nil when off
	flvStreams         *IPCount // nil when off

	cpu cpuSampler
}

// New creates the HTTP layer over reg.
func New(reg Registry, opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limits.SDPSize <= 0 {
		opts.Limits.SDPSize = maxOfferBytes
	}
	if opts.Limits.BodySize <= 0 {
		opts.Limits.BodySize = 1 << 20
	}
	return &API{reg: reg, opts: opts, log: opts.Logger, start: time.Now(), refusals: map[int]uint64{},
		limits: map[string]uint64{}, limitLog: map[string]time.Time{},
		requests:   NewIPRate(opts.Limits.RequestsPerSec, opts.Limits.RequestBurst),
		sessions:   NewIPRate(opts.Limits.SessionsPerSec, opts.Limits.SessionBurst),
		live:       NewIPRate(opts.Limits.LiveRequestsPerSec, opts.Limits.LiveRequestBurst),
		flvStreams: NewIPCount(opts.Limits.FLVStreamsPerIP)}
}

// RegisterSignaling mounts WHIP/WHEP and the legacy API at SRS's paths.
func (a *API) RegisterSignaling(mux *http.ServeMux) {
	mux.HandleFunc("/rtc/v1/whip/", a.handleWHIP(false))
	mux.HandleFunc("/rtc/v1/whep/", a.handleWHIP(true))
	mux.HandleFunc("/rtc/v1/whep/layer/", a.handleLayer)
	mux.HandleFunc("/rtc/v1/whip-play/", a.handleWHIP(true))
	mux.HandleFunc("/rtc/v1/publish/", a.handleLegacy(false))
	mux.HandleFunc("/rtc/v1/play/", a.handleLegacy(true))
}

// Refusals returns how many 4xx/5xx answers were sent, by status.
func (a *API) Refusals() map[int]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.refusals)
}

// Error is an error with its HTTP status (RFC 9725 §4.2 asks for
// meaningful 4xx codes; SRS before 7.0.121 just closed the connection) and,
// for the JSON API, SRS's numeric error code.
type Error struct {
	Status int
	Code   int // SRS's error code in JSON bodies; 0 = the status
	Err    error
	// Limit names the limit a refusal is over ("" for none): it is counted
	// by LimitRefusals. RetryAfter, when set, is sent as Retry-After.
	Limit      string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the status and a formatted reason.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// statusOf is the status an error answers with.
func statusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

// refuse logs and counts a 4xx/5xx answer: one line per refusal, except
// refusals over a limit, which are all counted and logged at most once a
// second per limit (a flood must not flood the log).
func (a *API) refuse(r *http.Request, status int, err error) {
	limit := ""
	if e, ok := errors.AsType[*Error](err); ok {
		limit = e.Limit
	}
	now := time.Now()
	a.mu.Lock()
	a.refusals[status]++
	quiet := false
	if limit != "" {
		a.limits[limit]++
		quiet = now.Sub(a.limitLog[limit]) < time.Second
		if !quiet {
			a.limitLog[limit] = now
		}
	}
	a.mu.Unlock()
	if quiet {
		return
	}
	a.log.Warn("http refused", "method", r.Method, "path", r.URL.Path, "status", status,
		"reason", oneLine(err.Error()), "remote", r.RemoteAddr)
}

// writeError refuses with the status and a one-line text/plain reason.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	a.refuse(r, status, err)
	retryAfter(w, err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// cors adds SRS's CORS headers when crossdomain is on and the request has
// an Origin, exposing what WHIP/WHEP clients must read.
func (a *API) cors(w http.ResponseWriter, r *http.Request) {
	if !a.opts.Crossdomain || r.Header.Get("Origin") == "" {
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
