package httplive

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fanout/fanout/bridge/hls"
	"github.com/fanout/fanout/bridge/hub"
)

// FuzzRequest sends arbitrary HTTP-FLV and HLS requests (method, path,
// query, Host) to a handler with one live stream (live/s, H.264 + AAC,
// HLS on) and one published without a key frame (live/nokey): nothing
// panics, every request ends within its context, only GET and HEAD are
// served, and a 200 only ever names a live stream's FLV or HLS files.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{"/live/s.flv", "/live/s.m3u8", "/live/s/0.ts", "/live/nokey.flv?vhost=x",
		"/live/none.flv", "/a/b/c/d.ts", "//..//s.flv", "/live/s.flv?domain=%zz", "/.flv", "/live/s.m3u8?vhost=__defaultVhost__"} {
		f.Add("GET", s, "fanout.test:8080")
	}
	f.Add("HEAD", "/live/s.flv", "[::1]:8080")
	f.Add("POST", "/live/s.flv", "")
	h := hub.New(hub.Config{})
	f.Cleanup(h.Close)
	hd := New(Config{Hub: h, HLS: hls.New(hls.Config{Hub: h}), Wait: 2 * time.Millisecond,
		Vhost: func(host string) string { return hub.DefaultVhost }})
	pub, err := h.Publish(hub.NewKey("", "live", "s"), hub.Tracks{Video: hub.CodecH264, Audio: hub.CodecAAC,
		AudioConfig: []byte{0x12, 0x10}, SampleRate: 44100, Channels: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(pub.Close)
	nokey, err := h.Publish(hub.NewKey("", "live", "nokey"), hub.Tracks{Video: hub.CodecH264})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nokey.Close)
	f.Fuzz(func(t *testing.T, method, target, host string) {
		r, err := http.NewRequest(method, "http://fanout.test"+target, nil)
		if err != nil || !strings.HasPrefix(r.URL.Path, "/") {
			return
		}
		r.Host = host
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		w := &codeRecorder{ResponseRecorder: httptest.NewRecorder()}
		done := make(chan struct{})
		go func() {
			defer close(done)
			pub.Write(&hub.Unit{Codec: hub.CodecH264, Key: true, NALUs: [][]byte{sps, pps, {0x65, 2}}})
			hd.ServeHTTP(w, r.WithContext(ctx))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s did not end with its context", method, target)
		}
		if w.code == 0 && ctx.Err() == nil {
			t.Fatalf("%s %s: no answer, and the client had not left", method, target)
		}
		if w.code == http.StatusOK && r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Fatalf("%s %s answered 200", method, target)
		}
		if w.code == http.StatusOK && !strings.Contains(r.URL.Path, "/s") {
			t.Fatalf("%s %s: 200 for a stream that is not live", method, target)
		}
	})
}

// codeRecorder remembers the status the handler wrote, 0 if none: a
// handler whose client left writes nothing, which httptest's Code would
// show as 200.
type codeRecorder struct {
	*httptest.ResponseRecorder
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseRecorder.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return c.ResponseRecorder.Write(b)
}

func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseRecorder }
