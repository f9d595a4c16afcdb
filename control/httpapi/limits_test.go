package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRequestRateLimit: past its burst one IP gets 429 with Retry-After and
// a one-line reason, counted once per refusal under the limit's name and
// logged once; another IP is not affected, and loopback is exempt when
// configured so.
func TestRequestRateLimit(t *testing.T) {
	api := New(&fakeRegistry{sessions: map[string]Session{}}, Options{Logger: discardLogger(),
		Limits: Limits{RequestsPerSec: 1, RequestBurst: 3, SessionsPerSec: 100, SessionBurst: 100, ExemptLoopback: true}})
	mux := http.NewServeMux()
	api.RegisterSignaling(mux)
	send := func(remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/rtc/v1/whip/?app=live&stream=s", strings.NewReader("v=0"))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	for i := range 3 {
		if w := send("203.0.113.7:4000"); w.Code != http.StatusCreated {
			t.Fatalf("request %d within the burst: %d %s", i, w.Code, w.Body)
		}
	}
	w := send("203.0.113.7:4001")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d", w.Code)
	}
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if b := w.Body.String(); strings.Count(b, "\n") != 1 || !strings.Contains(b, "too many requests") ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("reason %q (%s)", b, w.Header().Get("Content-Type"))
	}
	if w := send("198.51.100.1:5000"); w.Code != http.StatusCreated {
		t.Errorf("another IP: %d", w.Code)
	}
	for range 10 {
		if w := send("127.0.0.1:6000"); w.Code != http.StatusCreated {
			t.Fatalf("exempt loopback: %d", w.Code)
		}
	}
	send("203.0.113.7:4002")
	if got := api.LimitRefusals(); got[LimitRequestsPerIP] != 2 || len(got) != 1 {
		t.Errorf("limit refusals %v", got)
	}
}

// TestSessionRateAndSizes: offers have their own bucket (DELETEs do not
// spend it); an offer over sdp_size and a legacy body over http_body_size
// get 413 counted under their limit.
func TestSessionRateAndSizes(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Limits = Limits{RequestsPerSec: 1000, RequestBurst: 1000, SessionsPerSec: 0.01, SessionBurst: 2,
			SDPSize: 2048, BodySize: 4096}
	})
	for range 2 {
		if resp, body := h.do("POST", "/rtc/v1/whep/", "v=0", "Content-Type", "application/sdp"); resp.StatusCode != 201 {
			t.Fatalf("offer: %d %s", resp.StatusCode, body)
		}
	}
	if resp, _ := h.do("DELETE", "/rtc/v1/whip/?session=abcd:efgh&token=x", ""); resp.StatusCode != 404 {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	resp, body := h.do("POST", "/rtc/v1/whep/", "v=0", "Content-Type", "application/sdp")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "new sessions") {
		t.Errorf("third offer: %d %q Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	h2 := newHarness(t, func(o *Options) { o.Limits = Limits{SDPSize: 2048, BodySize: 4096} })
	if resp, _ := h2.do("POST", "/rtc/v1/whip/", strings.Repeat("a", 2049), "Content-Type", "application/sdp"); resp.StatusCode != 413 {
		t.Errorf("big offer: %d", resp.StatusCode)
	}
	legacy := `{"streamurl":"webrtc://h/live/s","sdp":"` + strings.Repeat("a", 3000) + `"}`
	if resp, _ := h2.do("POST", "/rtc/v1/play/", legacy); resp.StatusCode != 413 {
		t.Errorf("legacy offer over sdp_size: %d", resp.StatusCode)
	}
	if resp, _ := h2.do("POST", "/rtc/v1/play/", strings.Repeat(" ", 5000)); resp.StatusCode != 413 {
		t.Errorf("legacy body over http_body_size: %d", resp.StatusCode)
	}
	if got := h.api.LimitRefusals(); got[LimitSessionsPerIP] != 1 {
		t.Errorf("session refusals %v", got)
	}
	if got := h2.api.LimitRefusals(); got[LimitSDPSize] != 2 || got[LimitBodySize] != 1 {
		t.Errorf("size refusals %v", got)
	}
}

// TestIPRateBounded: a spray of source addresses never grows a limiter's
// table past maxTrackedIPs, and IPv6 hosts of one /64 share a bucket.
func TestIPRateBounded(t *testing.T) {
	l := NewIPRate(1, 1)
	now := time.Now()
	for i := range maxTrackedIPs + 500 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Take(ip, now)
	}
	if n := l.tracked(); n > maxTrackedIPs {
		t.Errorf("%d IPs tracked, bound %d", n, maxTrackedIPs)
	}
	a := &API{opts: Options{}}
	k1, _ := a.sourceKey(&http.Request{RemoteAddr: "[2001:db8:1:2::1]:5"})
	k2, _ := a.sourceKey(&http.Request{RemoteAddr: "[2001:db8:1:2:ffff::9]:6"})
	if k1 != k2 {
		t.Errorf("one /64, two keys: %v %v", k1, k2)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tracked is how many IPs the limiter holds (tests).
func (l *IPRate) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
