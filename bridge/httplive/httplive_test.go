package httplive

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fanout/fanout/bridge/hub"
)

func TestRoutesAndErrors(t *testing.T) {
	h := hub.New(hub.Config{})
	defer h.Close()
	var seen []string
	srv := New(Config{Hub: h, Wait: 20 * time.Millisecond, Vhost: func(host string) string { seen = append(seen, host); return host },
		FLV: func(v string) bool { return v != "noflv" }})
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/live/none.flv", http.StatusNotFound},
		{http.MethodGet, "/live/none.m3u8", http.StatusNotFound}, // HLS off: no manager
		{http.MethodGet, "/live/none/seg0.ts", http.StatusNotFound},
		{http.MethodGet, "/x.flv", http.StatusNotFound},
		{http.MethodGet, "/live/a.flv?vhost=noflv", http.StatusNotFound},
		{http.MethodPost, "/live/a.flv", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://example.org:8080"+tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
	if len(seen) == 0 || seen[0] != "example.org" {
		t.Errorf("vhost lookups %v, want the host without port", seen)
	}
	// A live stream answers with FLV headers (HEAD does not wait for data).
	p, err := h.Publish(hub.NewKey("example.org", "live", "a"), hub.Tracks{Video: hub.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "http://example.org/live/a.flv", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/x-flv" {
		t.Errorf("HEAD live stream: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
