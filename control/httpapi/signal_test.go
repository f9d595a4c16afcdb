package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestWHIPCreated(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.do("POST", "/rtc/v1/whip/?app=live&stream=cam&eip=1.2.3.4&codec=vp8&secret=x", "v=0",
		"Content-Type", "application/sdp", "X-Forwarded-For", "9.9.9.9, 10.0.0.1")
	if resp.StatusCode != http.StatusCreated || body != "v=0\r\n" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/sdp", "ETag": `"e1"`, "Accept-Patch": "application/trickle-ice-sdpfrag",
		"Location": "/rtc/v1/whip/?action=delete&token=tok&session=abcd:efgh",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	o := h.reg.offers[0]
	if o.Play || o.App != "live" || o.Stream != "cam" || o.EIP != "1.2.3.4" || o.VideoCodec != "vp8" ||
		o.ClientIP != "9.9.9.9" || !strings.Contains(o.Param, "secret=x") || o.Vhost != "127.0.0.1" {
		t.Errorf("offer: %+v", o)
	}
}

func TestWHEPAndDefaults(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.VhostOf = func(string) string { return "__defaultVhost__" } })
	for _, path := range []string{"/rtc/v1/whep/", "/rtc/v1/whip-play/", "/rtc/v1/whip/?action=play"} {
		if resp, body := h.do("POST", path, "v=0"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, o := range h.reg.offers {
		if !o.Play || o.App != "live" || o.Stream != "livestream" || o.Vhost != "__defaultVhost__" {
			t.Errorf("offer: %+v", o)
		}
	}
}

func TestSignalingStatuses(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, method, path, ctype, body string
		regErr                          error
		want                            int
	}{
		{"wrong content type", "POST", "/rtc/v1/whip/", "application/json", "v=0", nil, 415},
		{"bad stream name", "POST", "/rtc/v1/whip/?stream=a/b", "application/sdp", "v=0", nil, 400},
		{"short ufrag", "POST", "/rtc/v1/whip/?ice-ufrag=ab", "application/sdp", "v=0", nil, 400},
		{"short pwd", "POST", "/rtc/v1/whip/?ice-pwd=abc", "application/sdp", "v=0", nil, 400},
		{"huge body", "POST", "/rtc/v1/whip/", "application/sdp", strings.Repeat("a", maxOfferBytes+1), nil, 413},
		{"registry 400", "POST", "/rtc/v1/whip/", "application/sdp", "x", Errorf(400, "malformed sdp"), 400},
		{"registry 409", "POST", "/rtc/v1/whip/", "application/sdp", "v=0", Errorf(409, "stream busy"), 409},
		{"registry 422", "POST", "/rtc/v1/whep/", "application/sdp", "v=0", Errorf(422, "no common codec"), 422},
		{"registry 503", "POST", "/rtc/v1/whip/", "application/sdp", "v=0", Errorf(503, "draining"), 503},
		{"registry plain error", "POST", "/rtc/v1/whip/", "application/sdp", "v=0", errors.New("boom"), 500},
		{"GET", "GET", "/rtc/v1/whip/", "", "", nil, 405},
		{"PUT", "PUT", "/rtc/v1/whep/", "application/sdp", "v=0", nil, 405},
		{"legacy GET", "GET", "/rtc/v1/play/", "", "", nil, 405},
		{"delete unknown", "DELETE", "/rtc/v1/whip/?session=nope:x&token=t", "", "", nil, 404},
		{"delete no session", "DELETE", "/rtc/v1/whip/", "", "", nil, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.reg.offerErr = c.regErr
			resp, body := h.do(c.method, c.path, c.body, "Content-Type", c.ctype)
			if resp.StatusCode != c.want {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, c.want)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || strings.Count(body, "\n") != 1 {
				t.Errorf("not a one-line text reason: %q %q", resp.Header.Get("Content-Type"), body)
			}
			if c.want == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if c.want == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	got := h.api.Refusals()
	if got[400] != 4 || got[413] != 1 || got[415] != 1 || got[409] != 1 || got[422] != 1 || got[503] != 1 || got[500] != 1 ||
		got[405] != 3 || got[404] != 2 {
		t.Errorf("refusals %v", got)
	}
}

// TestRefusalLoggedAndCounted: a 422 for an offer with no common codec is
// one log line (method, path, status, reason, remote) and one count.
func TestRefusalLoggedAndCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.reg.offerErr = Errorf(http.StatusUnprocessableEntity, "unsupported sdp offer: no common audio codec")
	if resp, _ := h.do("POST", "/rtc/v1/whep/?app=live&stream=x", "v=0", "Content-Type", "application/sdp"); resp.StatusCode != 422 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := strings.Split(strings.TrimSpace(h.log.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line, got %q", lines)
	}
	for _, want := range []string{"method=POST", "path=/rtc/v1/whep/", "status=422",
		`reason="unsupported sdp offer: no common audio codec"`, "remote=127.0.0.1:"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q lacks %q", lines[0], want)
		}
	}
	if got := h.api.Refusals(); len(got) != 1 || got[422] != 1 {
		t.Errorf("refusals %v", got)
	}
}

func TestOptionsCORS(t *testing.T) {
	h := newHarness(t, nil)
	resp, _ := h.do("OPTIONS", "/rtc/v1/whip/", "", "Origin", "http://x")
	if resp.StatusCode != 200 || resp.Header.Get("Accept-Post") != "application/sdp" ||
		resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := h.do("POST", "/rtc/v1/whip/", "v=0"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("CORS headers without an Origin")
	}
	off := newHarness(t, func(o *Options) { o.Crossdomain = false })
	if resp, _ := off.do("OPTIONS", "/rtc/v1/whip/", "", "Origin", "http://x"); resp.StatusCode != 405 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("OPTIONS with crossdomain off: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestDeleteAndPatch(t *testing.T) {
	h := newHarness(t, nil)
	h.reg.sessions["abcd"] = Session{Token: "tok", ETag: `"e1"`}
	loc := "/rtc/v1/whip/?action=delete&token=tok&session=abcd:efgh"
	frag := "a=ice-ufrag:x\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n"
	for _, c := range []struct {
		ctype, ifMatch string
		want           int
	}{
		{"application/trickle-ice-sdpfrag", "", 428},
		{"application/trickle-ice-sdpfrag", `"stale"`, 412},
		{"application/trickle-ice-sdpfrag", "*", 422},
		{"application/sdp", `"e1"`, 415},
		{"application/trickle-ice-sdpfrag", `"e1"`, 204},
	} {
		if resp, body := h.do("PATCH", loc, frag, "Content-Type", c.ctype, "If-Match", c.ifMatch); resp.StatusCode != c.want {
			t.Errorf("PATCH %s If-Match %q: %d %s, want %d", c.ctype, c.ifMatch, resp.StatusCode, body, c.want)
		}
	}
	if resp, _ := h.do("PATCH", strings.Replace(loc, "tok", "bad", 1), frag, "Content-Type",
		"application/trickle-ice-sdpfrag", "If-Match", `"e1"`); resp.StatusCode != 404 {
		t.Errorf("PATCH with a wrong token: %d", resp.StatusCode)
	}
	if resp, _ := h.do("DELETE", strings.Replace(loc, "tok", "bad", 1), ""); resp.StatusCode != 403 {
		t.Errorf("DELETE with a wrong token: %d", resp.StatusCode)
	}
	resp, body := h.do("DELETE", loc, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "0" || body != "" || len(h.reg.ended) != 1 {
		t.Fatalf("DELETE: %d %q %v", resp.StatusCode, body, h.reg.ended)
	}
	if resp, _ := h.do("DELETE", loc, ""); resp.StatusCode != 404 {
		t.Errorf("second DELETE: %d", resp.StatusCode)
	}
}

func TestBearer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BearerToken = "s3cret" })
	resp, _ := h.do("POST", "/rtc/v1/whip/", "v=0", "Content-Type", "application/sdp")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := h.do("POST", "/rtc/v1/whip/", "v=0", "Authorization", "Bearer wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp, _ := h.do("POST", "/rtc/v1/whip/", "v=0", "Authorization", "Bearer s3cret"); resp.StatusCode != 201 {
		t.Errorf("right token: %d", resp.StatusCode)
	}
	// Bearer guards signaling only; the JSON API has Basic auth.
	h.json("GET", "/api/v1/versions", 200, nil)
}

func TestLegacy(t *testing.T) {
	h := newHarness(t, nil)
	req, _ := json.Marshal(map[string]string{"streamurl": "webrtc://example.com/live/cam?vhost=v1", "sdp": "v=0",
		"clientip": "5.6.7.8"})
	var res struct {
		Code      int    `json:"code"`
		Server    string `json:"server"`
		Service   string `json:"service"`
		PID       string `json:"pid"`
		SDP       string `json:"sdp"`
		SessionID string `json:"sessionid"`
	}
	resp, body := h.do("POST", "/rtc/v1/publish/?eip=1.1.1.1", string(req))
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	if res.Code != 0 || res.Server != "vid-test123" || res.Service != "vid-test123" || res.PID == "" ||
		res.SDP != "v=0\r\n" || res.SessionID != "abcd:efgh" {
		t.Errorf("answer %+v", res)
	}
	o := h.reg.offers[0]
	if o.Play || o.Vhost != "v1" || o.App != "live" || o.Stream != "cam" || o.EIP != "1.1.1.1" ||
		o.ClientIP != "5.6.7.8" || o.APIHost != "example.com" || o.Param != "vhost=v1&upstream=rtc" {
		t.Errorf("offer %+v", o)
	}
	for _, bad := range []string{"{", `{"sdp":"v=0"}`, `{"sdp":"v=0","streamurl":"webrtc://h/onlyapp"}`} {
		resp, body := h.do("POST", "/rtc/v1/play/", bad)
		var e struct{ Code int }
		if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Code != 400 {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	if h.api.Refusals()[400] != 3 {
		t.Errorf("refusals %v", h.api.Refusals())
	}
}
