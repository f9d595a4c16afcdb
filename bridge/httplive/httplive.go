// Package httplive is the bridge's HTTP handler for live playback: HTTP-FLV
// at /{app}/{stream}.flv and HLS at /{app}/{stream}.m3u8 (segments under
// /{app}/{stream}/). cmd mounts it on the HTTP server (port 8080). The vhost
// is `?vhost=` or Config.Vhost(Host), else hub.DefaultVhost.
//
// Concurrency: each FLV request reads its own hub reader on the request's
// goroutine; a slow client loses units (counted by the hub) and never slows
// the publisher. Imported by bridge.
package httplive

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fanout/fanout/bridge/flv"
	"github.com/fanout/fanout/bridge/hls"
	"github.com/fanout/fanout/bridge/hub"
)

// Config configures a Handler.
type Config struct {
	Hub    *hub.Hub
	HLS    *hls.Manager // nil turns HLS off
	Logger *slog.Logger
	// Vhost maps a request's host name to a vhost. Nil maps every host to
	// hub.DefaultVhost.
	Vhost func(host string) string
	// FLV reports whether http_remux is on for a vhost. Nil means on.
	FLV func(vhost string) bool
	// WriteTimeout bounds each write to a client (default 10s).
	WriteTimeout time.Duration
}

// Handler serves HTTP-FLV and HLS.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New returns the handler.
func New(cfg Config) *Handler {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	vhost := h.vhost(r)
	p := strings.Trim(r.URL.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		http.NotFound(w, r)
		return
	}
	dir, file := p[:i], p[i+1:]
	switch {
	case strings.HasSuffix(file, ".flv"):
		if h.cfg.FLV != nil && !h.cfg.FLV(vhost) {
			http.NotFound(w, r)
			return
		}
		h.serveFLV(w, r, hub.NewKey(vhost, dir, strings.TrimSuffix(file, ".flv")))
	case strings.HasSuffix(file, ".m3u8"):
		h.serveHLS(w, r, hub.NewKey(vhost, dir, strings.TrimSuffix(file, ".m3u8")), file)
	case strings.HasSuffix(file, ".ts"):
		j := strings.LastIndexByte(dir, '/')
		if j <= 0 {
			http.NotFound(w, r)
			return
		}
		h.serveHLS(w, r, hub.NewKey(vhost, dir[:j], dir[j+1:]), file)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) vhost(r *http.Request) string {
	if v := r.URL.Query().Get("vhost"); v != "" {
		return v
	}
	if h.cfg.Vhost == nil {
		return hub.DefaultVhost
	}
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	return h.cfg.Vhost(host)
}

func (h *Handler) serveHLS(w http.ResponseWriter, r *http.Request, key hub.Key, file string) {
	if h.cfg.HLS == nil {
		http.NotFound(w, r)
		return
	}
	if err := h.cfg.HLS.Serve(w, r, key, file); errors.Is(err, hls.ErrNotFound) {
		http.NotFound(w, r)
	}
}

func (h *Handler) serveFLV(w http.ResponseWriter, r *http.Request, key hub.Key) {
	rd, err := h.cfg.Hub.Subscribe(key)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "video/x-flv")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	mw := flv.NewUnitWriter(rd.Tracks())
	var buf []byte
	log := h.log.With("stream", key.String(), "remote", r.RemoteAddr)
	for {
		select {
		case <-r.Context().Done():
			log.Debug("http-flv client left", "dropped", rd.Dropped())
			return
		case u, ok := <-rd.Units():
			if !ok {
				return
			}
			if buf, err = mw.Append(buf[:0], u); err == nil && len(buf) > 0 {
				err = h.send(w, rc, buf, len(rd.Units()) == 0)
			}
			if err != nil {
				log.Debug("http-flv write", "err", err)
				return
			}
		}
	}
}

// send writes b and flushes when no more units are queued, so a burst goes
// out in one write.
func (h *Handler) send(w http.ResponseWriter, rc *http.ResponseController, b []byte, flush bool) error {
	_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	if flush {
		return rc.Flush()
	}
	return nil
}
