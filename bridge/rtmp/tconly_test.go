package rtmp

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtmp/rtmptest"
)

// startServer runs a Server with its hub on a loopback port.
func startServer(t *testing.T) (*hub.Hub, string) {
	t.Helper()
	h := hub.New(hub.Config{})
	s := NewServer(Config{Hub: h, Vhost: func(host string) string {
		if host == "x" {
			return host
		}
		return hub.DefaultVhost
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		h.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return h, ln.Addr().String()
}

// testFLV makes a 4 s H.264 + AAC FLV file with ffmpeg.
func testFLV(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.flv")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "4", "-c:v", "libx264", "-preset", "veryfast",
		"-bf", "0", "-g", "25", "-c:a", "aac", "-f", "flv", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// TestTCURLOnlyConnect: a client whose connect command carries tcUrl and no
// app (as some SRS clients send it) is accepted, publishes real media
// under the app from tcUrl, and ffmpeg plays it back over RTMP; a connect
// with neither is rejected with NetConnection.Connect.Rejected.
func TestTCURLOnlyConnect(t *testing.T) {
	h, addr := startServer(t)
	src := testFLV(t)

	bad := rtmptest.Dial(t, addr)
	bad.Command(t, 3, 0, "connect", 1, amf0.Object{{Key: "flashVer", Value: "FMLE/3.0"}})
	if name, code := bad.Reply(t); name != "_error" || code != "NetConnection.Connect.Rejected" {
		t.Fatalf("connect without tcUrl: %s %s", name, code)
	}

	cl := rtmptest.Dial(t, addr)
	cl.Command(t, 3, 0, "connect", 1, amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live?vhost=x"},
		{Key: "type", Value: "nonprivate"}, {Key: "flashVer", Value: "FMLE/3.0 (compatible; FMSc/1.0)"}})
	if name, code := cl.Reply(t); name != "_result" || code != "NetConnection.Connect.Success" {
		t.Fatalf("connect with tcUrl only: %s %s", name, code)
	}
	cl.Command(t, 3, 0, "createStream", 2, nil)
	if name, _ := cl.Reply(t); name != "_result" {
		t.Fatalf("createStream: %s", name)
	}
	cl.Command(t, 8, streamID, "publish", 3, nil, "tconly?token=abc", "live")
	if name, code := cl.Reply(t); name != "onStatus" || code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %s %s", name, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- cl.PumpFLV(ctx, src) }()

	key := hub.NewKey("x", "live", "tconly")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := h.Tracks(key); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never went live; live: %v", key, h.Keys())
		}
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
		"rtmp://"+addr+"/live/tconly?vhost=x").CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe the tcUrl-only stream: %v: %s", err, out)
	}
	if got := strings.Fields(strings.ReplaceAll(string(out), ",", " ")); !contains(got, "h264") || !contains(got, "aac") {
		t.Fatalf("played back %v, want h264 and aac", got)
	}
	if err := <-sent; err != nil {
		t.Fatalf("publishing: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestFFmpegURLForms: ffmpeg publishes to rtmp://host/live?vhost=x/stream
// (the query inside its tcUrl) and to rtmp://host/live/stream?token=abc
// (the query on its stream name); each is live under the key SRS gives it
// and plays back from there.
func TestFFmpegURLForms(t *testing.T) {
	h, addr := startServer(t)
	src := testFLV(t)
	for _, tc := range []struct {
		push, play string
		key        hub.Key
	}{
		{"/live?vhost=x/vstream", "/live/vstream?vhost=x", hub.NewKey("x", "live", "vstream")},
		{"/live/tstream?token=abc", "/live/tstream", hub.NewKey("", "live", "tstream")},
	} {
		t.Run(tc.push, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			push := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src,
				"-c", "copy", "-f", "flv", "rtmp://"+addr+tc.push)
			push.WaitDelay = time.Second
			if err := push.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = push.Wait() }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, ok := h.Tracks(tc.key); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%v never went live; live: %v", tc.key, h.Keys())
				}
			}
			out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
				"-of", "csv=p=0", "rtmp://"+addr+tc.play).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe %s: %v: %s", tc.play, err, out)
			}
			if got := strings.Fields(strings.ReplaceAll(string(out), ",", " ")); !contains(got, "h264") || !contains(got, "aac") {
				t.Fatalf("played back %v, want h264 and aac", got)
			}
		})
	}
}

// TestPlayWaitsForPublish: an RTMP player (ffprobe) that connects before
// the publisher waits for the stream and gets it; a player that leaves
// while waiting ends its wait.
func TestPlayWaitsForPublish(t *testing.T) {
	h, addr := startServer(t)
	src := testFLV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probed := make(chan error, 1)
	go func() {
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
			"-of", "csv=p=0", "rtmp://"+addr+"/live/early").CombinedOutput()
		got := strings.Fields(strings.ReplaceAll(string(out), ",", " "))
		if err == nil && (!contains(got, "h264") || !contains(got, "aac")) {
			err = errors.New("streams " + strings.Join(got, " ") + ", want h264 and aac")
		}
		probed <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); h.Waiting() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the player never waited in the hub")
		}
	}
	push := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src,
		"-c", "copy", "-f", "flv", "rtmp://"+addr+"/live/early")
	push.WaitDelay = time.Second
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("push: %v: %s", err, out)
	}
	if err := <-probed; err != nil {
		t.Fatalf("ffprobe started before the publish: %v", err)
	}

	gone := rtmptest.Dial(t, addr)
	gone.Command(t, 3, 0, "connect", 1, amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live"}})
	gone.Reply(t)
	gone.Command(t, 8, streamID, "play", 2, nil, "never")
	for deadline := time.Now().Add(10 * time.Second); h.Waiting() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hand-made player never waited in the hub")
		}
	}
	_ = gone.Close()
	for deadline := time.Now().Add(5 * time.Second); h.Waiting() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the wait outlived the player's connection")
		}
	}
}
