package rtmp

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/fanout/fanout/bridge/flv"
	"github.com/fanout/fanout/bridge/hub"
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

// handClient is an RTMP client written by hand on gortmplib's packages,
// so that its connect command carries exactly what the test wants.
type handClient struct {
	c   net.Conn
	bc  *bytecounter.ReadWriter
	mrw *message.ReadWriter
}

func dialHand(t *testing.T, addr string) *handClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	bc := bytecounter.NewReadWriter(c)
	if _, _, err := handshake.DoClient(bc, false, false); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return &handClient{c: c, bc: bc, mrw: message.NewReadWriter(bc, bc, false)}
}

func (h *handClient) command(t *testing.T, csid byte, msid uint32, name string, id int, args ...any) {
	t.Helper()
	err := h.mrw.Write(&message.CommandAMF0{ChunkStreamID: csid, MessageStreamID: msid, Name: name, CommandID: id,
		Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// reply reads commands until one named _result, _error or onStatus and
// returns its name and the code of its info object.
func (h *handClient) reply(t *testing.T) (name, code string) {
	t.Helper()
	for {
		msg, err := h.mrw.Read()
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		cmd, ok := msg.(*message.CommandAMF0)
		if !ok || (cmd.Name != "_result" && cmd.Name != "_error" && cmd.Name != "onStatus") {
			continue
		}
		for _, a := range cmd.Arguments {
			if o, ok := a.(amf0.Object); ok {
				if c, ok := o.GetString("code"); ok {
					code = c
				}
			}
		}
		return cmd.Name, code
	}
}

// TestTCURLOnlyConnect: a client whose connect command carries tcUrl and no
// app (as some SRS clients send it) is accepted, publishes real media
// under the app from tcUrl, and ffmpeg plays it back over RTMP; a connect
// with neither is rejected with NetConnection.Connect.Rejected.
func TestTCURLOnlyConnect(t *testing.T) {
	h, addr := startServer(t)
	src := testFLV(t)

	bad := dialHand(t, addr)
	bad.command(t, 3, 0, "connect", 1, amf0.Object{{Key: "flashVer", Value: "FMLE/3.0"}})
	if name, code := bad.reply(t); name != "_error" || code != "NetConnection.Connect.Rejected" {
		t.Fatalf("connect without tcUrl: %s %s", name, code)
	}

	cl := dialHand(t, addr)
	cl.command(t, 3, 0, "connect", 1, amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live?vhost=x"},
		{Key: "type", Value: "nonprivate"}, {Key: "flashVer", Value: "FMLE/3.0 (compatible; FMSc/1.0)"}})
	if name, code := cl.reply(t); name != "_result" || code != "NetConnection.Connect.Success" {
		t.Fatalf("connect with tcUrl only: %s %s", name, code)
	}
	cl.command(t, 3, 0, "createStream", 2, nil)
	if name, _ := cl.reply(t); name != "_result" {
		t.Fatalf("createStream: %s", name)
	}
	cl.command(t, 8, streamID, "publish", 3, nil, "tconly?token=abc", "live")
	if name, code := cl.reply(t); name != "onStatus" || code != "NetStream.Publish.Start" {
		t.Fatalf("publish: %s %s", name, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- cl.pump(ctx, src) }()

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

// pump publishes the FLV file's audio and video tags in real time.
func (h *handClient) pump(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := flv.NewReader(f)
	if _, _, err := r.ReadHeader(); err != nil {
		return err
	}
	w := rawmessage.NewWriter(h.bc, h.bc.Writer, false)
	start := time.Now()
	for ctx.Err() == nil {
		tag, err := r.ReadTag()
		if err != nil {
			return nil // end of file
		}
		csid := byte(message.AudioChunkStreamID)
		switch tag.Type {
		case flv.TagVideo:
			csid = message.VideoChunkStreamID
		case flv.TagAudio:
		default:
			continue
		}
		ts := time.Duration(tag.Timestamp) * time.Millisecond
		time.Sleep(time.Until(start.Add(ts)))
		err = w.Write(&rawmessage.Message{ChunkStreamID: csid, Timestamp: ts, Type: uint8(tag.Type),
			MessageStreamID: streamID, Body: tag.Body})
		if err != nil {
			return err
		}
	}
	return ctx.Err()
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

	gone := dialHand(t, addr)
	gone.command(t, 3, 0, "connect", 1, amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live"}})
	gone.reply(t)
	gone.command(t, 8, streamID, "play", 2, nil, "never")
	for deadline := time.Now().Add(10 * time.Second); h.Waiting() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hand-made player never waited in the hub")
		}
	}
	_ = gone.c.Close()
	for deadline := time.Now().Add(5 * time.Second); h.Waiting() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the wait outlived the player's connection")
		}
	}
}
