// Package httplive is the bridge's HTTP handler for live playback: HTTP-FLV
// at /{app}/{stream}.flv and HLS at /{app}/{stream}.m3u8 (segments under
// /{app}/{stream}/). cmd mounts it on the HTTP server (port 8080). The vhost
// is Config.Vhost of `?vhost=` (or `?domain=`), else of the Host.
//
// A request for a stream that is not live yet waits for it, as SRS's
// players may connect right after the publisher's WHIP POST or RTMP
// publish: FLV until the stream is published and its first key frame can
// be sent, HLS until the stream's muxer runs; Config.Wait (30 s) later it
// is answered 404. The wait is the hub's (or HLS manager's) channel, bound
// to the request's context, so a client that leaves ends it.
//
// Concurrency: each FLV request reads its own hub reader on the request's
// goroutine; a slow client loses units (counted by the hub) and never slows
// the publisher. Imported by bridge.
package httplive

import (
	"context"
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
	// Wait bounds how long a request for a stream that is not live (or
	// has not sent its first key frame) waits for it before 404
	// (default 30s).
	Wait time.Duration
}

// DefaultWait is Config.Wait's default.
const DefaultWait = 30 * time.Second

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
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
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
	liftDeadlines(w, h.cfg.Wait+h.cfg.WriteTimeout)
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

// vhost is `?vhost=` (or `?domain=`), else the Host, mapped through
// Config.Vhost: an unknown name is the default vhost, as in SRS and as the
// RTMP server maps its tcUrl.
func (h *Handler) vhost(r *http.Request) string {
	q := r.URL.Query()
	name := q.Get("vhost")
	if name == "" {
		name = q.Get("domain")
	}
	if h.cfg.Vhost == nil {
		if name == "" {
			return hub.DefaultVhost
		}
		return name
	}
	if name == "" {
		name = r.Host
		if hh, _, err := net.SplitHostPort(name); err == nil {
			name = hh
		}
	}
	return h.cfg.Vhost(name)
}

func (h *Handler) serveHLS(w http.ResponseWriter, r *http.Request, key hub.Key, file string) {
	if h.cfg.HLS == nil {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Wait)
	defer cancel()
	// Each request tells the hub (a relay on an edge opens, and stays
	// open while HLS players poll).
	h.cfg.Hub.Want(ctx, key)
	rq := r
	if strings.HasSuffix(file, ".m3u8") {
		// The wait covers the muxer's start and its first segment.
		if err := h.cfg.HLS.Wait(ctx, key); err != nil {
			h.notLive(w, r, key, err)
			return
		}
		rq = r.WithContext(ctx)
	}
	switch err := h.cfg.HLS.Serve(w, rq, key, file); {
	case errors.Is(err, hls.ErrNotFound):
		http.NotFound(w, r)
	case err != nil:
		h.notLive(w, r, key, err)
	}
}

// notLive answers a request whose stream did not come live in time, unless
// the client has already left.
func (h *Handler) notLive(w http.ResponseWriter, r *http.Request, key hub.Key, err error) {
	if r.Context().Err() != nil {
		h.log.Debug("client left while waiting for the stream", "stream", key.String(), "remote", r.RemoteAddr)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, "stream "+key.String()+" not live after "+h.cfg.Wait.String(), http.StatusNotFound)
		return
	}
	http.NotFound(w, r)
}

func (h *Handler) serveFLV(w http.ResponseWriter, r *http.Request, key hub.Key) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Wait)
	defer cancel()
	rd, err := h.cfg.Hub.SubscribeWait(ctx, key)
	if err != nil {
		h.notLive(w, r, key, err)
		return
	}
	defer rd.Close()
	mw := flv.NewUnitWriter(rd.Tracks())
	var buf []byte
	if r.Method != http.MethodHead {
		if buf, err = firstBytes(ctx, rd, mw); err != nil {
			h.notLive(w, r, key, err)
			return
		}
	}
	w.Header().Set("Content-Type", "video/x-flv")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	h.streamFLV(w, r, rd, mw, buf)
}

// firstBytes waits for the first unit the writer turns into FLV bytes: the
// first key frame when the stream has video.
func firstBytes(ctx context.Context, rd *hub.Reader, mw *flv.UnitWriter) ([]byte, error) {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case u, ok := <-rd.Units():
			if !ok {
				return nil, hub.ErrNotFound
			}
			var err error
			if buf, err = mw.Append(buf[:0], u); err != nil || len(buf) > 0 {
				return buf, err
			}
		}
	}
}

// streamFLV sends first and then every unit until the client or the
// stream leaves.
func (h *Handler) streamFLV(w http.ResponseWriter, r *http.Request, rd *hub.Reader, mw *flv.UnitWriter, first []byte) {
	rc := http.NewResponseController(w)
	log := h.log.With("stream", rd.Key().String(), "remote", r.RemoteAddr)
	buf := first
	err := h.send(w, rc, buf, len(rd.Units()) == 0)
	for err == nil {
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
		}
	}
	log.Debug("http-flv write", "err", err)
}

// liftDeadlines frees a live request from the HTTP server's timeouts
// (limits.http_read_timeout and http_write_timeout), which are meant for
// signaling: the read deadline would cancel the request's context while it
// waits for the stream or plays it, the write deadline would cut the
// stream. The wait and the first write get first; each FLV write then sets
// its own deadline (send). Errors (a ResponseWriter without deadlines, in
// tests) leave the server's.
func liftDeadlines(w http.ResponseWriter, first time.Duration) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(first))
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
