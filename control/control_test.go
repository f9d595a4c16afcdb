package control

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/fanout/fanout/fastpath/route"
)

// fakeFastpath records published tables; no sockets, no cores.
type fakeFastpath struct {
	mu        sync.Mutex
	tables    []*route.Table
	up        chan route.Upcall
	srv       *Server
	outOfLock int // tables published while Server.mu was free
	disorder  int // tables older than the one before
}

func (f *fakeFastpath) Publish(t *route.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.tables); n > 0 && t.Version <= f.tables[n-1].Version {
		f.disorder++
	}
	if f.srv != nil && f.srv.mu.TryLock() {
		f.srv.mu.Unlock()
		f.outOfLock++
	}
	f.tables = append(f.tables, t)
}

func (f *fakeFastpath) Upcalls() <-chan route.Upcall         { return f.up }
func (f *fakeFastpath) Release(route.Upcall)                 {}
func (f *fakeFastpath) WriteTo([]byte, netip.AddrPort) error { return nil }
func (f *fakeFastpath) published() int                       { f.mu.Lock(); defer f.mu.Unlock(); return len(f.tables) }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestServer(t *testing.T) (*Server, *fakeFastpath, *httptest.Server, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	fp := &fakeFastpath{up: make(chan route.Upcall)}
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), ServerID: "vid-ctl"}, fp)
	if err != nil {
		t.Fatal(err)
	}
	fp.srv = s
	s.Start()
	mux := http.NewServeMux()
	s.Register(mux)
	s.RegisterAPI(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, fp, hs, logs
}

const g722Offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 9\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n" +
	"a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:9 G722/8000\r\n"

// TestNoCommonCodec422 drives the real registry: an offer with no codec in
// common answers 422, logs one refusal line and counts it by status.
func TestNoCommonCodec422(t *testing.T) {
	s, _, hs, logs := newTestServer(t)
	resp, err := http.Post(hs.URL+"/rtc/v1/whep/?app=live&stream=g722", "application/sdp", strings.NewReader(g722Offer))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "no supported codec") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var refusals []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "http refused") {
			refusals = append(refusals, l)
		}
	}
	if len(refusals) != 1 || !strings.Contains(refusals[0], "status=422") ||
		!strings.Contains(refusals[0], "path=/rtc/v1/whep/") || !strings.Contains(refusals[0], "no supported codec") {
		t.Errorf("refusal lines %q", refusals)
	}
	if got := s.RefusalsByStatus(); got[422] != 1 || len(got) != 1 {
		t.Errorf("RefusalsByStatus %v", got)
	}
	if counts, live := s.Stats(); live != 0 || counts.SessionsCreated != 0 || len(s.Streams()) != 0 {
		t.Errorf("a refused offer left state: %+v %d %v", counts, live, s.Streams())
	}
}

// TestPublishListsAndEnds: a publish registers a session and stream, the
// table reaches the fastpath, the API lists it, and DELETE ends it.
func TestPublishListsAndEnds(t *testing.T) {
	s, fp, hs, _ := newTestServer(t)
	resp, err := http.Post(hs.URL+"/rtc/v1/whip/?app=live&stream=pub", "application/sdp",
		strings.NewReader(opusOffer("sendonly")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if fp.published() == 0 {
		t.Error("no route table published")
	}
	st := s.Streams()
	if len(st) != 1 || !st[0].Publish.Active || st[0].Audio == nil || st[0].Audio.Codec != "Opus" || st[0].Clients != 1 {
		t.Fatalf("streams %+v", st)
	}
	if cl := s.Clients(); len(cl) != 1 || cl[0].Type != "rtc-publish" || !cl[0].Publish {
		t.Fatalf("clients %+v", cl)
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+resp.Header.Get("Location"), nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	del.Body.Close()
	if _, live := s.Stats(); del.StatusCode != 200 || live != 0 || len(s.Streams()) != 0 {
		t.Errorf("DELETE: %d, %d live", del.StatusCode, live)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.outOfLock != len(fp.tables) || fp.disorder != 0 { // one request at a time: mu is free at every Publish
		t.Errorf("%d of %d tables published under Server.mu, %d out of order", len(fp.tables)-fp.outOfLock,
			len(fp.tables), fp.disorder)
	}
}

// opusOffer is a minimal audio-only offer: sendonly publishes, recvonly plays.
func opusOffer(direction string) string {
	o := strings.Replace(g722Offer, "a=recvonly", "a="+direction, 1)
	o = strings.Replace(o, "m=audio 9 UDP/TLS/RTP/SAVPF 9", "m=audio 9 UDP/TLS/RTP/SAVPF 111", 1)
	return strings.Replace(o, "a=rtpmap:9 G722/8000", "a=rtpmap:111 opus/48000/2\r\na=ssrc:1234 cname:x", 1)
}

// TestTablesInOrderOutsideLock: concurrent offers publish route tables in
// the order they were built, never while the registry lock is held.
func TestTablesInOrderOutsideLock(t *testing.T) {
	s, fp, hs, _ := newTestServer(t)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			resp, err := http.Post(hs.URL+"/rtc/v1/whep/?app=live&stream=order", "application/sdp",
				strings.NewReader(opusOffer("recvonly")))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("play: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	s.Close()
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.disorder != 0 || len(fp.tables) == 0 {
		t.Errorf("%d of %d tables out of order", fp.disorder, len(fp.tables))
	}
	if fp.outOfLock == 0 {
		t.Error("no table was published with Server.mu free")
	}
}
