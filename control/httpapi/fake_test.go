package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeRegistry is a Registry in memory: it records offers and serves what
// the test put in it.
type fakeRegistry struct {
	mu       sync.Mutex
	offers   []Offer
	offerErr error
	sessions map[string]Session // by local ufrag
	ended    []string
	streams  []StreamInfo
	clients  []ClientInfo
	kicked   []string
	vhosts   []Vhost
}

func (f *fakeRegistry) Offer(_ context.Context, o Offer) (*Answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offers = append(f.offers, o)
	if f.offerErr != nil {
		return nil, f.offerErr
	}
	return &Answer{SDP: []byte("v=0\r\n"), Location: "/rtc/v1/whip/?action=delete&token=tok&session=abcd:efgh",
		ETag: `"e1"`, Session: "abcd:efgh"}, nil
}

func (f *fakeRegistry) Session(name string) (Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ufrag, _, _ := strings.Cut(name, ":")
	s, ok := f.sessions[ufrag]
	return s, ok
}

func (f *fakeRegistry) End(name, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ufrag, _, _ := strings.Cut(name, ":")
	delete(f.sessions, ufrag)
	f.ended = append(f.ended, name)
}

func (f *fakeRegistry) Streams() []StreamInfo { return f.streams }

func (f *fakeRegistry) SetLayer(_, _, _ string) error { return nil }

func (f *fakeRegistry) SetTemporal(_, _ string, _ int) error { return nil }
func (f *fakeRegistry) Clients() []ClientInfo                { return f.clients }
func (f *fakeRegistry) Vhosts() []Vhost                      { return f.vhosts }

func (f *fakeRegistry) Kick(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.clients {
		if c.ID == id {
			f.clients = append(f.clients[:i:i], f.clients[i+1:]...)
			f.kicked = append(f.kicked, id)
			return true
		}
	}
	return false
}

func (f *fakeRegistry) Summary() map[string]any {
	return map[string]any{"sessions": len(f.clients), "fastpath": map[string]any{"cores": 2}}
}

// syncBuffer collects log output from handlers running concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is an API over a fake registry behind httptest.
type harness struct {
	t   *testing.T
	reg *fakeRegistry
	api *API
	srv *httptest.Server
	log *syncBuffer
}

func newHarness(t *testing.T, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, reg: &fakeRegistry{sessions: map[string]Session{}}, log: &syncBuffer{}}
	opts := Options{Crossdomain: true, ServerID: "vid-test123",
		Logger: slog.New(slog.NewTextHandler(h.log, nil))}
	if edit != nil {
		edit(&opts)
	}
	h.api = New(h.reg, opts)
	mux := http.NewServeMux()
	h.api.RegisterSignaling(mux)
	h.api.RegisterAPI(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// do sends a request; hdr holds header pairs.
func (h *harness) do(method, path, body string, hdr ...string) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// getJSON sends a request and decodes its JSON answer.
func (h *harness) json(method, path string, want int, v any) map[string]any {
	h.t.Helper()
	resp, body := h.do(method, path, "")
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, body, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		h.t.Fatalf("%s %s: %v in %s", method, path, err, body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			h.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return m
}
