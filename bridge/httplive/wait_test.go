package httplive

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/fanout/fanout/bridge/flv"
	"github.com/fanout/fanout/bridge/hls"
	"github.com/fanout/fanout/bridge/hub"
)

var (
	sps = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9}
	pps = []byte{0x68, 0xeb, 0xe3, 0xcb}
)

func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for i := 0; i < 200 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// liveServer is the handler over real HTTP with its hub (and HLS when
// withHLS), closed at cleanup.
func liveServer(t *testing.T, wait time.Duration, withHLS bool) (*hub.Hub, string) {
	t.Helper()
	h := hub.New(hub.Config{})
	cfg := Config{Hub: h, Wait: wait}
	if withHLS {
		cfg.HLS = hls.New(hls.Config{Hub: h})
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		if cfg.HLS != nil {
			cfg.HLS.Close()
		}
		h.Close()
		srv.Close()
	})
	return h, srv.URL
}

// waitFor polls cond (test-side only) until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type result struct {
	resp *http.Response
	err  error
	at   time.Duration
}

func get(ctx context.Context, url string) <-chan result {
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		ch <- result{resp, err, time.Since(start)}
	}()
	return ch
}

// TestFLVWaitsForPublish: a GET before the stream exists is answered once
// the stream is published and its first key frame arrives, starting with
// that key frame; units before it (audio, a non-key frame) are skipped.
func TestFLVWaitsForPublish(t *testing.T) {
	leakCheck(t)
	h, base := liveServer(t, 10*time.Second, false)
	got := get(context.Background(), base+"/live/later.flv")
	waitFor(t, "the request to wait in the hub", func() bool { return h.Waiting() == 1 })
	p, err := h.Publish(hub.NewKey("", "live", "later"), hub.Tracks{Video: hub.CodecH264, Audio: hub.CodecAAC,
		AudioConfig: []byte{0x12, 0x10}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Write(&hub.Unit{Codec: hub.CodecAAC, Frame: []byte{1}})
	p.Write(&hub.Unit{Codec: hub.CodecH264, NALUs: [][]byte{{0x41, 1}}})
	select {
	case r := <-got:
		t.Fatalf("answered before the first key frame: %v %v", r.resp, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	p.Write(&hub.Unit{Codec: hub.CodecH264, PTS: time.Second, DTS: time.Second, Key: true,
		NALUs: [][]byte{sps, pps, {0x65, 2}}})
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusOK || r.resp.Header.Get("Content-Type") != "video/x-flv" {
		t.Fatalf("answer %d %q", r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
	}
	fr := flv.NewReader(r.resp.Body)
	if v, a, err := fr.ReadHeader(); err != nil || !v || !a {
		t.Fatalf("FLV header: video %v audio %v %v", v, a, err)
	}
	var types []flv.TagType
	for len(types) < 3 {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, tag.Type)
		if tag.Type == flv.TagVideo && len(types) == 3 {
			if v, err := flv.ParseVideo(tag.Body); err != nil || !v.Key || len(v.NALUs) == 0 {
				t.Fatalf("first video frame %+v %v, want the key frame", v, err)
			}
		}
	}
	// AAC sequence header, AVC sequence header, the key frame.
	if types[0] != flv.TagAudio || types[1] != flv.TagVideo || types[2] != flv.TagVideo {
		t.Fatalf("first tags %v", types)
	}
	if h.Waiting() != 0 {
		t.Errorf("%d keys still waited on", h.Waiting())
	}
}

// TestFLVWaitTimesOut: with nothing published, the answer is 404 after
// the cap, not at once, and nothing is left waiting.
func TestFLVWaitTimesOut(t *testing.T) {
	leakCheck(t)
	h, base := liveServer(t, 300*time.Millisecond, false)
	r := <-get(context.Background(), base+"/live/never.flv")
	if r.err != nil {
		t.Fatal(r.err)
	}
	body, _ := io.ReadAll(r.resp.Body)
	r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusNotFound || r.at < 300*time.Millisecond || r.at > 3*time.Second {
		t.Fatalf("%d %q after %v, want 404 after the 300ms cap", r.resp.StatusCode, body, r.at)
	}
	if h.Waiting() != 0 {
		t.Errorf("%d keys still waited on", h.Waiting())
	}
	// A stream live without a key frame within the cap is 404 as well.
	p, err := h.Publish(hub.NewKey("", "live", "nokey"), hub.Tracks{Video: hub.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r = <-get(context.Background(), base+"/live/nokey.flv")
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.resp.Body.Close()
	// The reader detaches on the stream's owner goroutine: the count follows.
	for end := time.Now().Add(2 * time.Second); p.Readers() != 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if r.resp.StatusCode != http.StatusNotFound || p.Readers() != 0 {
		t.Fatalf("no key frame: %d with %d readers left", r.resp.StatusCode, p.Readers())
	}
}

// TestWaitEndsWhenClientLeaves: a client that disconnects while waiting
// (FLV in the hub, HLS in the manager) ends the wait at once.
func TestWaitEndsWhenClientLeaves(t *testing.T) {
	leakCheck(t)
	h, base := liveServer(t, time.Minute, true)
	for _, path := range []string{"/live/gone.flv", "/live/gone.m3u8"} {
		ctx, cancel := context.WithCancel(context.Background())
		got := get(ctx, base+path)
		if path == "/live/gone.flv" {
			waitFor(t, "the FLV request to wait", func() bool { return h.Waiting() == 1 })
		} else {
			time.Sleep(100 * time.Millisecond) // the HLS wait is the manager's
		}
		cancel()
		if r := <-got; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("%s: %v, want the client's cancel", path, r.err)
		}
		waitFor(t, "the wait to end", func() bool { return h.Waiting() == 0 })
	}
	// leakCheck proves the handlers returned: a waiting one would hold its
	// goroutine for the minute-long cap.
}

// TestHLSWait: a playlist request waits for the muxer (404 after the cap
// when none starts) and is 404 at once when HLS is off for the vhost.
func TestHLSWait(t *testing.T) {
	leakCheck(t)
	_, base := liveServer(t, 300*time.Millisecond, true)
	r := <-get(context.Background(), base+"/live/none.m3u8")
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusNotFound || r.at < 300*time.Millisecond {
		t.Fatalf("m3u8 of a stream never live: %d after %v, want 404 after the cap", r.resp.StatusCode, r.at)
	}

	h := hub.New(hub.Config{})
	defer h.Close()
	m := hls.New(hls.Config{Hub: h, Vhost: func(string) hls.Params { return hls.Params{} }})
	defer m.Close()
	srv := httptest.NewServer(New(Config{Hub: h, HLS: m, Wait: time.Minute}))
	defer srv.Close()
	r = <-get(context.Background(), srv.URL+"/live/off.m3u8")
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusNotFound || r.at > 5*time.Second {
		t.Fatalf("m3u8 with HLS off: %d after %v, want 404 at once", r.resp.StatusCode, r.at)
	}
}

// TestHLSPlaylistWaitBounded: the playlist of a stream that is live but
// whose first segment never completes (one key frame, then nothing) is
// 404 after the cap, and a client that leaves first frees its request at
// once: gohlslib's own wait ignores the request (found by FuzzRequest).
func TestHLSPlaylistWaitBounded(t *testing.T) {
	leakCheck(t)
	h, base := liveServer(t, 300*time.Millisecond, true)
	p, err := h.Publish(hub.NewKey("", "live", "stuck"), hub.Tracks{Video: hub.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Write(&hub.Unit{Codec: hub.CodecH264, Key: true, NALUs: [][]byte{sps, pps, {0x65, 2}}})
	r := <-get(context.Background(), base+"/live/stuck.m3u8")
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.resp.Body.Close()
	if r.resp.StatusCode != http.StatusNotFound || r.at < 300*time.Millisecond || r.at > 3*time.Second {
		t.Fatalf("playlist without a segment: %d after %v, want 404 after the 300ms cap", r.resp.StatusCode, r.at)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if r := <-get(ctx, base+"/live/stuck.m3u8"); r.err == nil {
		r.resp.Body.Close()
		t.Fatalf("answered %d before the client left", r.resp.StatusCode)
	}
}
