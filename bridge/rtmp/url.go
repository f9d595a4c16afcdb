package rtmp

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultApp is SRS's app name for a URL with none.
const DefaultApp = "__defaultApp__"

// request is what SRS's srs_discovery_tc_url derives from a connect's
// tcUrl and a publish/play stream name.
type request struct {
	Host   string // the tcUrl's host name, without port
	Vhost  string // `?vhost=`, else `?domain=`, else "" (the host decides)
	App    string
	Stream string
	Param  string // the merged query ("" or "?k=v&…"), passed on as SRS's req.param
}

// parseRequest joins tcURL and stream as SRS does:
//
//   - rtmp://host/app + stream?k=v                 → app, stream, ?k=v
//   - rtmp://host/app?vhost=x + stream (FMLE style) → app, stream, ?vhost=x
//   - rtmp://host/app/_definst_ + stream           → app (Wowza/FMLE's instance dropped)
//   - rtmp://host/a/b + c                          → app a/b, stream c
//   - rtmp://host + stream                         → app __defaultApp__
//
// Queries on both the tcUrl and the stream name are merged.
func parseRequest(tcURL, stream string) (request, error) {
	full := tcURL
	switch {
	case stream == "":
		full += "/"
	case stream[0] == '/':
		full += stream
	default:
		full += "/" + stream
	}
	// FMLE puts the query before the stream (rtmp://host/app?k=v/stream):
	// move it to the end, as SRS does.
	if q, s := strings.IndexAny(full, "?#"), strings.LastIndexByte(full, '/'); q >= 0 && s > q {
		full = full[:q] + full[s:] + full[q:s]
	}
	full = strings.ReplaceAll(full, "/_definst_", "")
	// One query: a second '?' (from the stream name) or a '#' joins it.
	if q := strings.IndexAny(full, "?#"); q >= 0 {
		rest := strings.NewReplacer("?", "&", "#", "&").Replace(full[q+1:])
		full = full[:q] + "?" + strings.Trim(rest, "&")
	}
	u, err := url.Parse(full)
	if err != nil {
		return request{}, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	p := strings.TrimPrefix(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	r := request{Host: u.Hostname(), App: strings.Trim(p[:max(i, 0)], "/"), Stream: p[i+1:]}
	if r.App == "" {
		r.App = DefaultApp
	}
	if r.Stream == "" {
		return request{}, ErrBadURL
	}
	q := u.Query()
	r.Vhost = q.Get("domain")
	if v := q.Get("vhost"); v != "" {
		r.Vhost = v
	}
	if u.RawQuery != "" {
		r.Param = "?" + u.RawQuery
	}
	return r, nil
}
