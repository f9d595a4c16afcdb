package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/fanout/fanout/bridge/flv"
	"github.com/fanout/fanout/bridge/rtmp/rtmptest"
)

// Issue 14, items 4 and 5: players that come before the stream, RTMP
// clients that send only tcUrl, and SRS's RTMP URL forms, against the
// whole server.

// compatConfig is bridgeConfig plus a vhost x with HTTP-FLV on.
func compatConfig() string {
	return bridgeConfig("") + `
vhost x {
    http_remux { enabled on; }
}
`
}

// pushArgs is the ffmpeg RTMP push of secs seconds of H.264 + AAC.
func pushArgs(secs int, url string) []string {
	return []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", fmt.Sprint(secs),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "25",
		"-c:a", "aac", "-f", "flv", url}
}

// flvTags GETs url and counts the video and audio tags in the first n
// tags of the answer.
func flvTags(ctx context.Context, url string, n int) (video, audio int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	r := flv.NewReader(resp.Body)
	if _, _, err := r.ReadHeader(); err != nil {
		return 0, 0, err
	}
	for range n {
		tag, err := r.ReadTag()
		if err != nil {
			return video, audio, err
		}
		switch tag.Type {
		case flv.TagVideo:
			video++
		case flv.TagAudio:
			audio++
		}
	}
	return video, audio, nil
}

// TestFLVAndHLSBeforePublish: an HTTP-FLV GET and an HLS playlist GET
// sent before ffmpeg publishes wait for the stream (as SRS's players do)
// and then get its media, instead of an immediate 404.
func TestFLVAndHLSBeforePublish(t *testing.T) {
	srv := startTestServerConfig(t, compatConfig())
	base := fmt.Sprintf("http://127.0.0.1:%d/live/early", srv.HTTPAddr().Port())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	type res struct {
		video, audio int
		err          error
	}
	flvDone, rtmpDone := make(chan res, 1), make(chan error, 1)
	go func() {
		v, a, err := flvTags(ctx, base+".flv", 100)
		flvDone <- res{v, a, err}
	}()
	rtmpURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live/early", srv.RTMPAddr().Port())
	go func() {
		c, err := probeStreams(ctx, rtmpURL)
		if err == nil && !hasAll(c, "h264", "aac") {
			err = fmt.Errorf("streams %v, want h264 + aac", c)
		}
		rtmpDone <- err
	}()
	// The playlist request is on the wire before the publish starts.
	hc, err := net.Dial("tcp", srv.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	_ = hc.SetDeadline(time.Now().Add(40 * time.Second))
	if _, err := fmt.Fprintf(hc, "GET /live/early.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The FLV and the RTMP player wait in the hub on the same key.
	waitUntil(t, 10*time.Second, "the FLV and RTMP players to wait in the hub", func() bool {
		return srv.link.b.Hub().Waiting() == 2
	})
	time.Sleep(100 * time.Millisecond)
	pushed := startFFmpeg(t, 30*time.Second, pushArgs(6, rtmpURL)...)
	f := <-flvDone
	if f.err != nil || f.video < 20 || f.audio < 20 {
		t.Errorf("FLV requested before the publish: %d video and %d audio tags of 100: %v", f.video, f.audio, f.err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(hc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "#EXTINF") {
		t.Fatalf("HLS playlist requested before the publish: %s\n%s", resp.Status, body)
	}
	if c, err := probeStreams(ctx, base+".m3u8"); err != nil || !hasAll(c, "h264", "aac") {
		t.Errorf("ffprobe of the playlist: %v %v", c, err)
	}
	if err := <-rtmpDone; err != nil {
		t.Errorf("RTMP play started before the publish: %v", err)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
}

// TestRTMPURLForms: ffmpeg publishes to rtmp://host/live?vhost=x/stream
// and rtmp://host/live/stream?token=abc; each plays over HTTP-FLV under
// the key SRS gives it (x/live/… and __defaultVhost__/live/…).
func TestRTMPURLForms(t *testing.T) {
	srv := startTestServerConfig(t, compatConfig())
	rtmpURL := fmt.Sprintf("rtmp://127.0.0.1:%d", srv.RTMPAddr().Port())
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", srv.HTTPAddr().Port())
	startFFmpeg(t, 30*time.Second, pushArgs(10, rtmpURL+"/live?vhost=x/vs")...)
	startFFmpeg(t, 30*time.Second, pushArgs(10, rtmpURL+"/live/ts?token=abc")...)
	waitHub(t, srv, "live", "vs")
	waitHub(t, srv, "live", "ts")
	for _, k := range srv.link.b.Hub().Keys() {
		if k.Stream == "vs" && k.Vhost != "x" || k.Stream == "ts" && k.Vhost != "__defaultVhost__" {
			t.Errorf("stream live as %v", k)
		}
	}
	probeAll(t, 20*time.Second, httpURL+"/live/vs.flv?vhost=x", httpURL+"/live/ts.flv",
		rtmpURL+"/live/vs?vhost=x", rtmpURL+"/live/ts")
}

// TestRTMPTCURLOnlyClient: an RTMP client whose connect command carries
// only tcUrl (no app), written by hand here, is accepted, publishes real
// media, and ffprobe plays it over RTMP and HTTP-FLV.
func TestRTMPTCURLOnlyClient(t *testing.T) {
	srv := startTestServerConfig(t, compatConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	src := filepath.Join(t.TempDir(), "in.flv")
	if _, err := tool(ctx, "ffmpeg", append([]string{"-y"}, pushArgs(6, src)[1:]...)...); err != nil {
		t.Fatal(err)
	}
	addr := srv.RTMPAddr().String()
	c := rtmptest.Dial(t, addr)
	steps := []struct {
		csid byte
		msid uint32
		name string
		args []any
		want string
	}{
		{3, 0, "connect", []any{amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live"}, {Key: "type", Value: "nonprivate"}}},
			"NetConnection.Connect.Success"},
		{3, 0, "createStream", []any{nil}, ""},
		{8, rtmptest.StreamID, "publish", []any{nil, "tconly", "live"}, "NetStream.Publish.Start"},
	}
	for i, s := range steps {
		c.Command(t, s.csid, s.msid, s.name, i+1, s.args...)
		if name, code := c.Reply(t); name == "_error" || code != s.want {
			t.Fatalf("%s: %s %q, want %q", s.name, name, code, s.want)
		}
	}
	sent := make(chan error, 1)
	go func() { sent <- c.PumpFLV(ctx, src) }()
	waitHub(t, srv, "live", "tconly")
	probeAll(t, 20*time.Second, fmt.Sprintf("rtmp://%s/live/tconly", addr),
		fmt.Sprintf("http://127.0.0.1:%d/live/tconly.flv", srv.HTTPAddr().Port()))
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
