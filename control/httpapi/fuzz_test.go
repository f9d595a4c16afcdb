package httpapi

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSignaling drives the WHIP/WHEP, legacy and API handlers with an
// arbitrary method, target, source address, headers and body over a fake
// registry: nothing panics, every answer has a valid status, a WHIP/WHEP
// refusal is one text/plain line, 429/503 carry Retry-After, and no body
// past the size limits reaches the registry.
func FuzzSignaling(f *testing.F) {
	f.Add("POST", "/rtc/v1/whip/?app=live&stream=s", "203.0.113.1:5", "application/sdp", "", []byte("v=0\r\n"))
	f.Add("POST", "/rtc/v1/whep/?ice-ufrag=abcd&ice-pwd=0123456789012345678901", "[2001:db8::1]:9", "application/sdp; charset=x",
		"Bearer tok", []byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"))
	f.Add("DELETE", "/rtc/v1/whip/?session=abcd:efgh&token=tok", "127.0.0.1:1", "", "", []byte(nil))
	f.Add("PATCH", "/rtc/v1/whip/?session=abcd:efgh&token=tok", "1.2.3.4:5", "application/trickle-ice-sdpfrag", `"e1"`,
		[]byte("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n"))
	f.Add("POST", "/rtc/v1/play/", "1.2.3.4:5", "application/json", "",
		[]byte(`{"streamurl":"webrtc://h/live/s?vhost=v","sdp":"v=0","clientip":"9.9.9.9"}`))
	f.Add("OPTIONS", "/rtc/v1/whip-play/", "garbage", "", "", []byte(nil))
	f.Add("GET", "/api/v1/streams/?count=-1&start=99999999999", "1.2.3.4:5", "", "Basic YTpi", []byte(nil))
	f.Add("DELETE", "/api/v1/clients/x%00y", "1.2.3.4:5", "", "", []byte(nil))
	reg := &fakeRegistry{sessions: map[string]Session{"abcd": {Token: "tok", ETag: `"e1"`}}}
	api := New(reg, Options{Logger: slog.New(slog.DiscardHandler), Crossdomain: true, BearerToken: "",
		Limits: Limits{RequestsPerSec: 1e6, RequestBurst: 1e6, SessionsPerSec: 1e6, SessionBurst: 1e6,
			SDPSize: 4096, BodySize: 8192}})
	mux := http.NewServeMux()
	api.RegisterSignaling(mux)
	api.RegisterAPI(mux)
	f.Fuzz(func(t *testing.T, method, target, remote, ctype, auth string, body []byte) {
		r, err := http.NewRequest(method, "http://fanout.test"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(r.URL.Path, "/") {
			return
		}
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Authorization", auth)
		r.Header.Set("If-Match", auth)
		r.Header.Set("X-Forwarded-For", remote)
		w := httptest.NewRecorder()
		reg.mu.Lock()
		before := len(reg.offers)
		reg.mu.Unlock()
		mux.ServeHTTP(w, r)
		checkAnswer(t, r, w, before, reg)
	})
}

func checkAnswer(t *testing.T, r *http.Request, w *httptest.ResponseRecorder, before int, reg *fakeRegistry) {
	t.Helper()
	if w.Code < 100 || w.Code > 599 {
		t.Fatalf("status %d", w.Code)
	}
	if (w.Code == 429 || w.Code == 503) && w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d without Retry-After", w.Code)
	}
	whip := strings.HasPrefix(r.URL.Path, "/rtc/v1/whip") || strings.HasPrefix(r.URL.Path, "/rtc/v1/whep")
	if whip && w.Code >= 400 {
		b, _ := io.ReadAll(w.Body)
		if strings.Count(string(b), "\n") != 1 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("%d refusal %q (%s) is not one text/plain line", w.Code, b, w.Header().Get("Content-Type"))
		}
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, o := range reg.offers[before:] {
		if len(o.SDP) > 4096 {
			t.Fatalf("an offer of %d bytes reached the registry (sdp_size 4096)", len(o.SDP))
		}
	}
	if len(reg.offers) > 1000 {
		reg.offers = reg.offers[:0]
	}
}
