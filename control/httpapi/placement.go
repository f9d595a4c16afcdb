package httpapi

import (
	"context"
	"errors"
	"net/http"
)

// Placement is what the HTTP layer asks of a cluster before it negotiates
// an offer (cmd adapts control/cluster to it; nil on a single node, which
// then takes every offer as before).
type Placement interface {
	// Place returns "" to take o on this node, or the base URL
	// (scheme://host[:port], no path) of the node o should go to: the
	// answer is then 307 with Location = that base + the request's path
	// and query (RFC 9110 §15.4.8 keeps the method and body). An *Error
	// refuses (409: another node owns the stream; 503: the registry
	// cannot be asked, answered with Retry-After).
	Place(ctx context.Context, o Offer) (redirect string, err error)
}

// redirect is an offer sent to another node.
type redirect struct{ location string }

func (e *redirect) Error() string { return "offer redirected to " + e.location }

// place asks the Placement, if any, where o goes.
func (a *API) place(r *http.Request, o Offer) error {
	if a.opts.Placement == nil {
		return nil
	}
	to, err := a.opts.Placement.Place(r.Context(), o)
	if err != nil {
		return err
	}
	if to != "" {
		return &redirect{location: to + r.URL.RequestURI()}
	}
	return nil
}

// writeRedirect answers 307 if err is a redirect; false if it is not one.
func (a *API) writeRedirect(w http.ResponseWriter, r *http.Request, err error) bool {
	rd, ok := errors.AsType[*redirect](err)
	if !ok {
		return false
	}
	a.log.Info("offer redirected", "path", r.URL.Path, "location", rd.location, "remote", r.RemoteAddr)
	w.Header().Set("Location", rd.location)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}

// apiCluster serves /api/v1/cluster from Options.Cluster (404 when the
// cluster is off).
func (a *API) apiCluster(r *http.Request, _ string) (map[string]any, error) {
	if a.opts.Cluster == nil {
		return nil, Errorf(http.StatusNotFound, "cluster is off (cluster { enabled on; })")
	}
	data, err := a.opts.Cluster(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"data": data}, nil
}
