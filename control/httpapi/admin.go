package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Version is Fanout's version, reported by /api/v1/versions in SRS's shape.
const (
	VersionMajor, VersionMinor, VersionRevision = 1, 0, 0
	Version                                     = "1.0.0"
)

// SRS's error codes in JSON API bodies (srs_kernel_error.hpp).
const (
	codeRawDisabled    = 1061
	codeVhostNotFound  = 2014
	codeStreamNotFound = 2048
	codeClientNotFound = 2049
)

// apiFunc answers one API request: the fields merged into SRS's envelope.
type apiFunc func(r *http.Request, id string) (map[string]any, error)

// RegisterAPI mounts SRS's JSON API (/api/…) and /healthz.
func (a *API) RegisterAPI(mux *http.ServeMux) {
	routes := map[string]apiFunc{
		"/api/":                     a.apiRoot,
		"/api/v1/":                  a.apiV1,
		"/api/v1/versions":          a.apiVersions,
		"/api/v1/summaries":         a.apiSummaries,
		"/api/v1/rusages":           a.apiRusages,
		"/api/v1/self_proc_stats":   a.apiSelfProcStats,
		"/api/v1/system_proc_stats": a.apiSystemProcStats,
		"/api/v1/meminfos":          a.apiMeminfos,
		"/api/v1/authors":           a.apiAuthors,
		"/api/v1/features":          a.apiFeatures,
		"/api/v1/raw":               a.apiRaw,
		"/api/v1/clusters":          a.apiClusters,
		"/api/v1/cluster":           a.apiCluster,
		"/api/v1/streams/":          a.apiStreams,
		"/api/v1/clients/":          a.apiClients,
		"/api/v1/vhosts/":           a.apiVhosts,
	}
	for pattern, fn := range routes {
		mux.HandleFunc(pattern, a.apiHandler(pattern, fn))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// jsonpCallback is a safe JSONP function name (SRS's ?callback=).
var jsonpCallback = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

// apiHandler adds CORS, Basic auth (http_api.auth, only under /api/ as in
// SRS), JSONP, SRS's {"code":0,"server":…} envelope and error statuses. A
// path below a pattern ending in "/" names an id ("/api/v1/streams/ID").
func (a *API) apiHandler(pattern string, fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.cors(w, r)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		if err := a.checkBasic(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="fanout"`)
			a.writeError(w, r, err)
			return
		}
		callback := r.URL.Query().Get("callback")
		if callback != "" && !jsonpCallback.MatchString(callback) {
			a.writeError(w, r, Errorf(http.StatusBadRequest, "callback %q is not a JavaScript name", callback))
			return
		}
		if m := r.URL.Query().Get("method"); callback != "" && m != "" {
			r.Method = strings.ToUpper(m) // SRS: JSONP cannot send DELETE
		}
		id := strings.Trim(strings.TrimPrefix(r.URL.Path, pattern), "/")
		data, err := fn(r, id)
		if err != nil {
			a.writeAPIError(w, r, callback, err)
			return
		}
		body := a.envelope(0)
		for k, v := range data {
			body[k] = v
		}
		writeJSON(w, http.StatusOK, callback, body)
	}
}

// envelope is SRS's answer frame: code, server, service, pid (a string).
func (a *API) envelope(code int) map[string]any {
	return map[string]any{"code": code, "server": a.opts.ServerID, "service": a.opts.ServerID,
		"pid": strconv.Itoa(os.Getpid())}
}

// writeAPIError refuses an API request. SRS answers 200 with {"code":N};
// Fanout keeps SRS's body and code and sends the real status with it, so
// both SRS's tools (which read code) and plain HTTP clients see the failure.
func (a *API) writeAPIError(w http.ResponseWriter, r *http.Request, callback string, err error) {
	status, code := statusOf(err), 0
	if e, ok := errors.AsType[*Error](err); ok {
		code = e.Code
	}
	a.refuse(r, status, err)
	if status == http.StatusMethodNotAllowed || code == 0 && callback == "" {
		a.writeErrorText(w, status, err) // SRS: true HTTP errors are text
		return
	}
	body := a.envelope(max(code, status))
	body["msg"] = oneLine(err.Error())
	writeJSON(w, status, callback, body)
}

func (a *API) writeErrorText(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(oneLine(err.Error()) + "\n"))
}

func writeJSON(w http.ResponseWriter, status int, callback string, body any) {
	b, _ := json.Marshal(body)
	if callback != "" {
		w.Header().Set("Content-Type", "text/javascript")
		b = append(append([]byte(callback+"("), b...), ')')
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// checkBasic enforces http_api.auth.
func (a *API) checkBasic(r *http.Request) error {
	want := a.opts.BasicAuth
	if !want.Enabled {
		return nil
	}
	u, p, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(want.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(p), []byte(want.Password)) != 1 {
		return Errorf(http.StatusUnauthorized, "http_api.auth: bad or missing credentials")
	}
	return nil
}

func notFound(r *http.Request) error {
	return Errorf(http.StatusNotFound, "no API at %s", r.URL.Path)
}

func methodNotAllowed(r *http.Request) error {
	return Errorf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
}

func (a *API) apiRoot(r *http.Request, id string) (map[string]any, error) {
	if id != "" {
		return nil, notFound(r)
	}
	return map[string]any{"urls": map[string]any{"api": "the api root",
		"rtc": map[string]any{"v1": map[string]string{"play": "Play stream", "publish": "Publish stream"}}}}, nil
}

func (a *API) apiV1(r *http.Request, id string) (map[string]any, error) {
	if id != "" {
		return nil, notFound(r)
	}
	return map[string]any{"urls": map[string]string{
		"versions": "the version of SRS", "summaries": "the summary(pid, argv, pwd, cpu, mem) of SRS",
		"rusages": "the rusage of SRS", "self_proc_stats": "the self process stats",
		"system_proc_stats": "the system process stats", "meminfos": "the meminfo of system",
		"authors": "the license, copyright, authors and contributors", "features": "the supported features of SRS",
		"vhosts": "manage all vhosts or specified vhost", "streams": "manage all streams or specified stream",
		"clients": "manage all clients or specified client", "raw": "raw api for srs (disabled in Fanout)",
		"clusters": "origin cluster server API",
	}}, nil
}

// apiVersions answers any method, as SRS (its tools POST it too).
func (a *API) apiVersions(*http.Request, string) (map[string]any, error) {
	return map[string]any{"data": map[string]any{
		"major": VersionMajor, "minor": VersionMinor, "revision": VersionRevision, "version": Version,
	}}, nil
}

func (a *API) apiStreams(r *http.Request, id string) (map[string]any, error) {
	all := a.reg.Streams()
	var found *StreamInfo
	for i := range all {
		if id != "" && all[i].ID == id {
			found = &all[i]
		}
	}
	switch {
	case id != "" && found == nil:
		return nil, &Error{Status: http.StatusNotFound, Code: codeStreamNotFound, Err: fmt.Errorf("stream %q not found", id)}
	case r.Method != http.MethodGet:
		return nil, methodNotAllowed(r)
	case found != nil:
		return map[string]any{"stream": found}, nil
	}
	return map[string]any{"streams": page(r, all)}, nil
}

func (a *API) apiClients(r *http.Request, id string) (map[string]any, error) {
	all := a.reg.Clients()
	var found *ClientInfo
	for i := range all {
		if id != "" && all[i].ID == id {
			found = &all[i]
		}
	}
	notFound := &Error{Status: http.StatusNotFound, Code: codeClientNotFound, Err: fmt.Errorf("client %q not found", id)}
	switch {
	case id != "" && found == nil:
		return nil, notFound
	case r.Method == http.MethodDelete && found != nil:
		if !a.reg.Kick(id) {
			return nil, notFound // ended meanwhile
		}
		return map[string]any{}, nil
	case r.Method != http.MethodGet:
		return nil, methodNotAllowed(r)
	case found != nil:
		return map[string]any{"client": found}, nil
	}
	return map[string]any{"clients": page(r, all)}, nil
}

// page applies SRS's ?start=&count= (count at least 10). Without either,
// Fanout lists everything (SRS lists 10).
func page[T any](r *http.Request, all []T) []T {
	q := r.URL.Query()
	if !q.Has("start") && !q.Has("count") {
		return all
	}
	start, _ := strconv.Atoi(q.Get("start"))
	count, _ := strconv.Atoi(q.Get("count"))
	start, count = min(max(start, 0), len(all)), max(count, 10)
	return all[start:min(start+count, len(all))]
}

// vhostJSON is SrsStatisticVhost::dumps.
type vhostJSON struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Enabled   bool           `json:"enabled"`
	Clients   int            `json:"clients"`
	Streams   int            `json:"streams"`
	SendBytes uint64         `json:"send_bytes"`
	RecvBytes uint64         `json:"recv_bytes"`
	Kbps      Kbps           `json:"kbps"`
	HLS       map[string]any `json:"hls"`
}

func (a *API) apiVhosts(r *http.Request, id string) (map[string]any, error) {
	streams := a.reg.Streams()
	var out []vhostJSON
	for _, v := range a.reg.Vhosts() {
		vj := vhostJSON{ID: VhostID(v.Name), Name: v.Name, Enabled: v.Enabled, HLS: map[string]any{"enabled": v.HLS}}
		if v.HLS {
			vj.HLS["fragment"] = v.HLSFragment.Seconds()
		}
		for _, st := range streams {
			if st.Vhost == v.Name {
				vj.Clients += st.Clients
				vj.SendBytes += st.SendBytes
				vj.RecvBytes += st.RecvBytes
				if st.Publish.Active {
					vj.Streams++
				}
			}
		}
		if id == "" || vj.ID == id || vj.Name == id {
			out = append(out, vj)
		}
	}
	switch {
	case id != "" && len(out) == 0:
		return nil, &Error{Status: http.StatusNotFound, Code: codeVhostNotFound, Err: fmt.Errorf("vhost %q not found", id)}
	case r.Method != http.MethodGet:
		return nil, methodNotAllowed(r)
	case id != "":
		return map[string]any{"vhost": out[0]}, nil
	}
	return map[string]any{"vhosts": append([]vhostJSON{}, out...)}, nil
}

// apiRaw: SRS's raw API (config reload and edit over HTTP) is not offered;
// rpc=raw reports it disabled, as SRS with raw_api off.
func (a *API) apiRaw(r *http.Request, _ string) (map[string]any, error) {
	if r.URL.Query().Get("rpc") == "raw" {
		return map[string]any{"http_api": map[string]any{"enabled": true, "crossdomain": a.opts.Crossdomain,
			"raw_api": map[string]bool{"enabled": false, "allow_reload": false, "allow_query": false, "allow_update": false}}}, nil
	}
	return nil, &Error{Status: http.StatusForbidden, Code: codeRawDisabled, Err: fmt.Errorf("raw api is disabled")}
}

// apiClusters: Fanout runs no SRS origin cluster; origin is null.
func (a *API) apiClusters(r *http.Request, _ string) (map[string]any, error) {
	q := r.URL.Query()
	return map[string]any{"data": map[string]any{
		"query":  map[string]string{"ip": q.Get("ip"), "vhost": q.Get("vhost"), "app": q.Get("app"), "stream": q.Get("stream")},
		"origin": nil,
	}}, nil
}

func (a *API) apiAuthors(*http.Request, string) (map[string]any, error) {
	return map[string]any{"data": map[string]any{"license": "MIT", "contributors": "the Fanout authors"}}, nil
}

func (a *API) apiFeatures(*http.Request, string) (map[string]any, error) {
	features := map[string]bool{"ssl": true, "hls": true, "hds": false, "callback": true, "api": true,
		"httpd": true, "dvr": false, "transcode": false, "ingest": false, "stat": true, "caster": false,
		"complex_send": false, "tcp_nodelay": true, "so_sendbuf": false, "mr": false}
	return map[string]any{"data": map[string]any{"options": "", "options2": "", "build": "", "build2": "",
		"features": features}}, nil
}

func (a *API) apiSummaries(*http.Request, string) (map[string]any, error) {
	now := time.Now()
	self, system, ok := a.cpu.summaries(now, a.start)
	return map[string]any{"data": map[string]any{
		"ok": ok, "now_ms": now.UnixMilli(), "self": self, "system": system, "fanout": a.reg.Summary(),
	}}, nil
}
