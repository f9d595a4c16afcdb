package pionrelay

import (
	"net/http"
	"strings"
	"testing"
)

func TestRelayRejectsBadRequests(t *testing.T) {
	r, err := Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{http.MethodPost, "/whep", "text/plain", "x", http.StatusUnsupportedMediaType},
		{http.MethodPost, "/whip", "application/sdp", "not sdp", http.StatusBadRequest},
		{http.MethodDelete, "/resource/42", "", "", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, r.URL()+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	if r.Sessions() != 0 {
		t.Fatalf("sessions %d", r.Sessions())
	}
	http.DefaultClient.CloseIdleConnections()
}
