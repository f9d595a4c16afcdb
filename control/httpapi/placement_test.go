package httpapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// placeFunc is a Placement from a function.
type placeFunc func(context.Context, Offer) (string, error)

func (f placeFunc) Place(ctx context.Context, o Offer) (string, error) { return f(ctx, o) }

// noFollow sends a request without following redirects.
func noFollow(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPlacement(t *testing.T) {
	var asked []Offer
	h := newHarness(t, func(o *Options) {
		o.Placement = placeFunc(func(_ context.Context, o Offer) (string, error) {
			asked = append(asked, o)
			switch o.Stream {
			case "elsewhere":
				return "http://10.0.0.2:1985", nil
			case "owned":
				return "", Errorf(http.StatusConflict, "stream owned by node b")
			case "down":
				return "", Errorf(http.StatusServiceUnavailable, "cluster registry unavailable")
			}
			return "", nil
		})
	})
	tests := []struct {
		name, method, path, body string
		status                   int
		location, retry          string
	}{
		{"here", "POST", "/rtc/v1/whep/?app=live&stream=cam", "v=0", http.StatusCreated, "/rtc/v1/whip/?action=delete&token=tok&session=abcd:efgh", ""},
		{"whep 307", "POST", "/rtc/v1/whep/?app=live&stream=elsewhere&eip=1.2.3.4", "v=0", http.StatusTemporaryRedirect,
			"http://10.0.0.2:1985/rtc/v1/whep/?app=live&stream=elsewhere&eip=1.2.3.4", ""},
		{"whip 409", "POST", "/rtc/v1/whip/?app=live&stream=owned", "v=0", http.StatusConflict, "", ""},
		{"whip 503", "POST", "/rtc/v1/whip/?app=live&stream=down", "v=0", http.StatusServiceUnavailable, "", "5"},
		{"legacy 307", "POST", "/rtc/v1/play/", `{"streamurl":"webrtc://h/live/elsewhere","sdp":"v=0"}`, http.StatusTemporaryRedirect,
			"http://10.0.0.2:1985/rtc/v1/play/", ""},
		{"legacy 503", "POST", "/rtc/v1/play/", `{"streamurl":"webrtc://h/live/down","sdp":"v=0"}`, http.StatusServiceUnavailable, "", "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := noFollow(t, tc.method, h.srv.URL+tc.path, tc.body)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location || resp.Header.Get("Retry-After") != tc.retry {
				t.Fatalf("%d Location %q Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Location"),
					resp.Header.Get("Retry-After"), body)
			}
		})
	}
	if len(h.reg.offers) != 1 {
		t.Errorf("registry saw %d offers, want only the one placed here", len(h.reg.offers))
	}
	if len(asked) != len(tests) || !asked[0].Play || asked[2].Play {
		t.Errorf("placement asked %+v", asked)
	}
}

func TestClusterAPI(t *testing.T) {
	h := newHarness(t, nil)
	if resp, _ := h.do("GET", "/api/v1/cluster", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("cluster off: %d", resp.StatusCode)
	}
	h = newHarness(t, func(o *Options) {
		o.Cluster = func(context.Context) (any, error) { return map[string]any{"node": "a"}, nil }
	})
	if resp, body := h.do("GET", "/api/v1/cluster", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"data":{"node":"a"}`) {
		t.Fatalf("cluster on: %d %s", resp.StatusCode, body)
	}
}
