package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/fanout/fanout/bridge/rtmp/rtmptest"
)

// TestLiveLimits: the RTMP listener and HTTP-FLV/HLS under their per-IP
// limits, over real sockets. An ffmpeg publisher holds one RTMP connection
// from 127.0.0.1; a second from there connects (handshake and connect
// command) and a third is closed at accept (rtmp_connections_per_ip 2),
// as is one past max_connections 4 from another IP, until a connection
// closes. An HTTP-FLV player from one IP plays; its second stream is 503
// with Retry-After (flv_streams_per_ip 1) while another IP plays; past
// the live request burst an IP gets 429 with Retry-After. Each refusal is
// counted under its limit on /metrics.
func TestLiveLimits(t *testing.T) {
	srv := startTestServerConfig(t, bridgeConfig("")+`max_connections 4;
limits { exempt_loopback off; rtmp_connections_per_ip 2; flv_streams_per_ip 1; live_requests_per_ip 0.5; live_request_burst 4; }`)
	addr := srv.RTMPAddr().String()
	startFFmpeg(t, 40*time.Second, pushArgs(30, "rtmp://"+addr+"/live/lim")...)
	waitHub(t, srv, "live", "lim")

	connect := func(src string) error {
		c, err := rtmptest.DialFrom(t, src, addr)
		if err != nil {
			return err
		}
		c.Command(t, 3, 0, "connect", 1, amf0.Object{{Key: "tcUrl", Value: "rtmp://" + addr + "/live"}})
		if name, code := c.Reply(t); code != "NetConnection.Connect.Success" {
			t.Fatalf("connect from %s: %s %s", src, name, code)
		}
		return nil
	}
	if err := connect("127.0.0.1"); err != nil {
		t.Fatalf("second RTMP connection from 127.0.0.1: %v", err)
	}
	if err := connect("127.0.0.1"); err == nil {
		t.Fatal("third RTMP connection from 127.0.0.1 was served")
	}
	if err := connect("127.0.0.2"); err != nil {
		t.Fatalf("first RTMP connection from 127.0.0.2: %v", err)
	}
	last, err := rtmptest.DialFrom(t, "127.0.0.3", addr) // the 4th in all
	if err != nil {
		t.Fatalf("fourth RTMP connection: %v", err)
	}
	if err := connect("127.0.0.4"); err == nil {
		t.Fatal("fifth RTMP connection (max_connections 4) was served")
	}
	_ = last.Close()
	overMax := 1.0 // refusals at max_connections: the one above and any retry below
	waitUntil(t, 5*time.Second, "a closed RTMP connection frees its place", func() bool {
		c, err := rtmptest.DialFrom(t, "127.0.0.4", addr)
		if err != nil {
			overMax++
			return false
		}
		return c.Close() == nil
	})

	flv := fmt.Sprintf("http://127.0.0.1:%d/live/lim.flv", srv.HTTPAddr().Port())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	playing := getLive(ctx, t, "127.0.0.5", flv)
	defer playing.Body.Close()
	if _, err := io.ReadFull(playing.Body, make([]byte, 1024)); playing.StatusCode != 200 || err != nil {
		t.Fatalf("FLV player: %d %v", playing.StatusCode, err)
	}
	checkRefused(t, getLive(ctx, t, "127.0.0.5", flv), 503, "second FLV stream from one IP")
	other := getLive(ctx, t, "127.0.0.6", flv)
	if other.StatusCode != 200 {
		t.Errorf("FLV player from another IP: %d", other.StatusCode)
	}
	_ = other.Body.Close()
	m3u8 := fmt.Sprintf("http://127.0.0.1:%d/live/lim.m3u8", srv.HTTPAddr().Port())
	for i := range 4 { // the burst
		resp := getLive(ctx, t, "127.0.0.7", m3u8)
		if _, _ = io.Copy(io.Discard, resp.Body); resp.StatusCode != 200 {
			t.Errorf("HLS playlist %d: %d", i+1, resp.StatusCode)
		}
		_ = resp.Body.Close()
	}
	checkRefused(t, getLive(ctx, t, "127.0.0.7", m3u8), 429, "HLS request past the burst")

	m := scrape(t, srv)
	for limit, want := range map[string]float64{"rtmp_connections_per_ip": 1, "max_connections": overMax,
		"flv_streams_per_ip": 1, "live_requests_per_ip": 1} {
		if got := m[`fanout_limit_refusals_total{limit="`+limit+`"}`]; got != want {
			t.Errorf("fanout_limit_refusals_total{limit=%q} = %v, want %v", limit, got, want)
		}
	}
}

// getLive GETs url from the local IP src.
func getLive(ctx context.Context, t *testing.T, src, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := clientFrom(src).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// checkRefused checks a refusal's status, Retry-After and one-line reason.
func checkRefused(t *testing.T, resp *http.Response, want int, what string) {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want || resp.Header.Get("Retry-After") == "" || strings.Count(string(b), "\n") != 1 {
		t.Errorf("%s: %d Retry-After %q %q, want %d", what, resp.StatusCode, resp.Header.Get("Retry-After"), b, want)
		return
	}
	t.Logf("%s: %d %s", what, resp.StatusCode, strings.TrimSpace(string(b)))
}
