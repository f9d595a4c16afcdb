// Package pages serves Fanout's built-in web root on the HTTP server (SRS's
// port 8080): the players at SRS's paths (/players/whip.html, whep.html,
// rtc_publisher.html, rtc_player.html, srs_player.html) and the demos
// (/demos/one2one.html, /demos/room.html, which talk to the signaling
// service of package rooms at /sig/v1/rtc). The files live in www/ and are
// embedded in the binary.
//
// The pages take SRS's query parameters: app, stream, eip, codec,
// autostart, api (port of the HTTP API, default 1985, or 1990 over https)
// and schema (http or https for the API); the demos add room and display.
// Each page exposes window.fanoutStats(), a promise of its connection state
// and getStats() figures, for people in the console and for tests.
//
// Third-party players (mpegts.js for HTTP-FLV, hls.js for HLS) are fetched
// at pinned versions with npm by fetch-vendor.sh into
// www/players/js/vendor/ and committed there, with their licenses, so that
// `go build` works offline and never runs npm.
//
// cmd/internal/node serves it (internal: only cmd imports it); it needs only
// the standard library. The handler is safe for concurrent use: the files
// are immutable after init.
package pages

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:www
var embedded embed.FS

// FS is the web root: players/…, demos/….
var FS = mustSub(embedded, "www")

// etags are strong validators from each file's content, so browsers
// revalidate cheaply (embedded files have no modification time).
var etags = hashAll(FS)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("pages: " + err.Error()) // dir is a constant of this package
	}
	return sub
}

func hashAll(f fs.FS) map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(f, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(f, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out["/"+name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return out
}

// Handler serves the web root. Directories serve their index.html; there
// is no directory listing.
func Handler() http.Handler {
	files := http.FileServerFS(FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := path.Clean(r.URL.Path)
		if strings.HasSuffix(r.URL.Path, "/") {
			name = path.Join(name, "index.html")
		}
		etag, ok := etags[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache") // always revalidate: pages change with the binary
		h.Set("X-Content-Type-Options", "nosniff")
		if path.Base(name) == "LICENSE" || path.Ext(name) == ".txt" || path.Base(name) == "VERSIONS" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
		files.ServeHTTP(w, r)
	})
}

// Register mounts the web root on mux: /players/ and /demos/, with / and
// /demos/ redirecting to the index at /players/.
func Register(mux *http.ServeMux) {
	h := Handler()
	toIndex := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/players/", http.StatusFound)
	}
	mux.Handle("/players/", h)
	mux.Handle("/demos/", h)
	mux.HandleFunc("/{$}", toIndex)
	mux.HandleFunc("/demos/{$}", toIndex)
}
