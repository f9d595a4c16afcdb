package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkLeaks fails the test if goroutines started during it are still
// running shortly after it ends.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testServer runs a bridge with RTMP and HTTP on 127.0.0.1.
type testServer struct {
	b        *Bridge
	rtmpAddr string
	httpURL  string
}

func startBridge(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = b.ServeRTMP(ln)
	}()
	hs := httptest.NewServer(b.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		b.Close()
		hs.Close()
		<-served
	})
	return &testServer{b: b, rtmpAddr: ln.Addr().String(), httpURL: hs.URL}
}

// run runs a command with a timeout and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.String(), err
}

// pushTone starts the brief's ffmpeg RTMP push of secs seconds.
func pushTone(ctx context.Context, url string, secs int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", strconv.Itoa(secs),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "50",
		"-c:a", "aac", "-f", "flv", url)
	cmd.WaitDelay = time.Second
	return cmd
}

// codecs returns the codec names ffprobe finds at url or path.
func probeCodecs(ctx context.Context, t *testing.T, src string) []string {
	t.Helper()
	out, err := run(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", src)
	if err != nil {
		t.Errorf("ffprobe %s: %v: %s", src, err, out)
		return nil
	}
	var names []string
	for _, l := range strings.Fields(out) {
		names = append(names, strings.Trim(l, ","))
	}
	return names
}

func hasCodecs(got []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// waitLive polls the hub until the stream is live.
func waitLive(t *testing.T, s *testServer, app, stream string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, k := range s.b.Hub().Keys() {
			if k.App == app && k.Stream == stream {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s/%s never went live", app, stream)
}
