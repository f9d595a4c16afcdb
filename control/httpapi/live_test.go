package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLimitLive: past the live request burst an IP gets 429, a second
// open FLV stream 503, both with Retry-After and counted by limit; a
// finished stream frees its place; other IPs and exempt loopback pass.
func TestLimitLive(t *testing.T) {
	api := New(&fakeRegistry{sessions: map[string]Session{}}, Options{Logger: discardLogger(),
		Limits: Limits{LiveRequestsPerSec: 0.001, LiveRequestBurst: 4, FLVStreamsPerIP: 1, ExemptLoopback: true}})
	hold, release := make(chan struct{}), make(chan struct{})
	h := api.LimitLive(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			hold <- struct{}{}
			<-release
		}
	}))
	get := func(remote, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	done := make(chan int)
	go func() { done <- get("203.0.113.7:1", "/live/s.flv?hold").Code }()
	<-hold
	if w := get("203.0.113.7:2", "/live/s.flv"); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("second FLV stream: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("198.51.100.1:1", "/live/s.flv"); w.Code != 200 {
		t.Errorf("FLV from another IP: %d", w.Code)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("first FLV stream: %d", code)
	}
	if w := get("203.0.113.7:3", "/live/s.flv"); w.Code != 200 {
		t.Errorf("FLV after the first ended: %d", w.Code)
	}
	if w := get("203.0.113.7:4", "/live/s.m3u8"); w.Code != 200 {
		t.Errorf("fourth request (the burst's last): %d", w.Code)
	}
	if w := get("203.0.113.7:5", "/live/s.m3u8"); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("fifth request: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	for range 10 {
		if w := get("127.0.0.1:1", "/live/s.flv"); w.Code != 200 {
			t.Fatalf("exempt loopback: %d", w.Code)
		}
	}
	if got := api.LimitRefusals(); got[LimitFLVStreamsPerIP] != 1 || got[LimitLiveRequestsPerIP] != 1 || len(got) != 2 {
		t.Errorf("limit refusals %v", got)
	}
}
