package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/websocket"

	"github.com/fanout/fanout/cmd/internal/rooms"
)

// TestPagesServed checks the embedded web root over plain HTTP: every page
// and script, content types, the ETag round trip, the redirects and 404s.
func TestPagesServed(t *testing.T) {
	srv := startTestServer(t, "")
	base := "http://" + srv.HTTPAddr().String()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/players/", "text/html", "whip.html"},
		{"/players/whip.html", "text/html", `data-role="publish"`},
		{"/players/whep.html", "text/html", `data-role="play"`},
		{"/players/rtc_publisher.html", "text/html", `data-api="legacy"`},
		{"/players/rtc_player.html", "text/html", `data-api="legacy"`},
		{"/players/srs_player.html", "text/html", "mpegts.min.js"},
		{"/demos/one2one.html", "text/html", `data-max="2"`},
		{"/demos/room.html", "text/html", "js/room.js"},
		{"/players/js/fanout.js", "text/javascript", "export class Peer"},
		{"/players/js/vendor/mpegts/mpegts.min.js", "text/javascript", "mpegts"},
		{"/players/js/vendor/hls/hls.min.js", "text/javascript", "Hls"},
		{"/players/js/vendor/hls/LICENSE", "text/plain", "Apache License"},
		{"/players/js/vendor/VERSIONS", "text/plain", "hls.js 1.7.4"},
		{"/players/css/fanout.css", "text/css", ".error"},
	} {
		resp, body := get(tc.path, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) ||
			!strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %s containing %q",
				tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), tc.ctype, tc.contains)
			continue
		}
		etag := resp.Header.Get("ETag")
		if again, _ := get(tc.path, map[string]string{"If-None-Match": etag}); etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", tc.path, etag, again.StatusCode)
		}
	}
	for _, path := range []string{"/", "/demos/"} {
		if resp, _ := get(path, nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/players/" {
			t.Errorf("GET %s: %d to %q, want 302 to /players/", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, path := range []string{"/players/nope.html", "/players/js/", "/players/js/vendor/hls/", "/sig/v1/rtc/x"} {
		if resp, _ := get(path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestPagesSignalingRoute joins a room through the server's /sig/v1/rtc.
func TestPagesSignalingRoute(t *testing.T) {
	srv := startTestServer(t, "")
	ws, err := websocket.Dial("ws://"+srv.HTTPAddr().String()+"/sig/v1/rtc", "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := websocket.JSON.Send(ws, rooms.Envelope{TID: "1", Msg: rooms.Message{Action: "join", Room: "r", Display: "a"}}); err != nil {
		t.Fatal(err)
	}
	var reply rooms.Envelope
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	if err := websocket.JSON.Receive(ws, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.TID != "1" || reply.Msg.Action != "join" || len(reply.Msg.Participants) != 1 {
		t.Fatalf("join reply: %+v", reply)
	}
}

// pagesBrowser is one headless Chromium whose tabs the page tests share:
// one browser process with several targets is much cheaper than several
// browsers on two cores.
type pagesBrowser struct {
	t       *testing.T
	ctx     context.Context
	out     lockedBuffer
	mu      sync.Mutex
	console []string
}

// startPagesBrowser launches Chromium with the flags of
// notes/testing-here.md §1 and closes it (and checks no process is left)
// when the test ends.
func startPagesBrowser(t *testing.T) *pagesBrowser {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("chromium not installed at %s (make deps-test installs it)", chromiumPath)
	}
	b := &pagesBrowser{t: t}
	opts, profile := chromiumOptions(t, &b.out,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		// Several tabs decode at once: keep the hidden ones running.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		checkNoChromium(t, profile)
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, b.out.String())
	}
	b.ctx = ctx
	return b
}

// tab opens url in a new tab, closed when the (sub)test ends.
func (b *pagesBrowser) tab(t *testing.T, name, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	go func() {
		for msg, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("[%s] %s: %s", name, msg.Type, msg.Text))
			b.mu.Unlock()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s to %s: %v", name, url, err)
	}
	return ctx
}

// pageStats is what window.fanoutStats() returns on every page (the demos
// fill Self and Remotes, srs_player.html fills Engine and the flags).
type pageStats struct {
	Role          string               `json:"role"`
	State         string               `json:"state"`
	Error         string               `json:"error"`
	FramesDecoded int                  `json:"framesDecoded"`
	FramesSent    int                  `json:"framesSent"`
	BitrateKbps   int                  `json:"bitrateKbps"`
	Codec         string               `json:"codec"`
	Engine        string               `json:"engine"`
	MPEGTS        bool                 `json:"mpegts"`
	HLS           bool                 `json:"hls"`
	Self          *pageStats           `json:"self"`
	Remotes       map[string]pageStats `json:"remotes"`
	// simulcast (simulcast_chromium_test.go)
	Width     int            `json:"width"`
	Layer     string         `json:"layer"`
	Encodings []pageEncoding `json:"encodings"`
	// a player's freezes (inbound-rtp video; simulcast_estimate_test.go)
	FreezeCount          int     `json:"freezeCount"`
	TotalFreezesDuration float64 `json:"totalFreezesDuration"`
}

// pageEncoding is one simulcast encoding a publisher page sends.
type pageEncoding struct {
	RID        string `json:"rid"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	FramesSent int    `json:"framesSent"`
}

// evalStats reads the page's fanoutStats(): a pagesBrowser tab's, or that
// of any chromedp context.
func evalStats(t *testing.T, ctx context.Context) pageStats {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string]("fanoutStats().then(JSON.stringify)", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fanoutStats(): %v", err)
	}
	var s pageStats
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("fanoutStats() = %q: %v", raw, err)
	}
	return s
}

// waitAll polls fanoutStats() of every tab until ok holds for all of them.
func (b *pagesBrowser) waitAll(t *testing.T, d time.Duration, tabs map[string]context.Context, ok func(pageStats) bool) map[string]pageStats {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		all, done := map[string]pageStats{}, true
		for name, ctx := range tabs {
			s := evalStats(t, ctx)
			all[name] = s
			done = done && ok(s)
		}
		if done {
			return all
		}
		if time.Now().After(deadline) {
			b.mu.Lock()
			t.Logf("browser console:\n%s", strings.Join(b.console, "\n"))
			b.mu.Unlock()
			t.Fatalf("pages not there after %v: %+v", d, all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPagesInChromium drives the built-in pages in headless Chromium
// against a real Fanout: WHIP → WHEP, the legacy API pages, the FLV/HLS
// player's error path, and the one-to-one and room demos (two and three
// tabs, everyone decoding everyone else). All tabs share one browser.
func TestPagesInChromium(t *testing.T) {
	b := startPagesBrowser(t)
	srv := startTestServer(t, "")
	page := func(path, query string) string {
		return fmt.Sprintf("http://%s%s?autostart=true&api=%d&%s", srv.HTTPAddr(), path, srv.APIAddr().Port(), query)
	}
	t.Run("whip_whep", func(t *testing.T) {
		pagesPublishPlay(t, b, page("/players/whip.html", "stream=pages-whip"), page("/players/whep.html", "stream=pages-whip"))
	})
	t.Run("legacy_api", func(t *testing.T) {
		pagesPublishPlay(t, b, page("/players/rtc_publisher.html", "stream=pages-legacy"),
			page("/players/rtc_player.html", "stream=pages-legacy"))
	})
	t.Run("error_shown", func(t *testing.T) {
		// A second publisher of a busy stream: the page shows the status and
		// the server's reason.
		pub := b.tab(t, "busy1", page("/players/whip.html", "stream=pages-busy"))
		b.waitAll(t, 10*time.Second, map[string]context.Context{"pub": pub}, func(s pageStats) bool { return s.State == "connected" })
		busy := b.tab(t, "busy2", page("/players/whip.html", "stream=pages-busy"))
		got := b.waitAll(t, 10*time.Second, map[string]context.Context{"busy": busy}, func(s pageStats) bool { return s.Error != "" })
		if e := got["busy"].Error; !strings.Contains(e, "HTTP 409") || !strings.Contains(e, "busy") {
			t.Errorf("second publisher's error %q, want HTTP 409 and the server's text", e)
		}
	})
	t.Run("srs_player", func(t *testing.T) {
		flv := b.tab(t, "flv", fmt.Sprintf("http://%s/players/srs_player.html?autostart=true&stream=pages-none.flv", srv.HTTPAddr()))
		got := b.waitAll(t, 10*time.Second, map[string]context.Context{"flv": flv}, func(s pageStats) bool { return s.Error != "" })
		if s := got["flv"]; !s.MPEGTS || !s.HLS || s.Engine != "mpegts" || !strings.Contains(s.Error, "HTTP 404") {
			t.Errorf("srs_player.html for a missing FLV stream: %+v; want mpegts.js and hls.js loaded and an HTTP 404", s)
		}
	})
	t.Run("one2one", func(t *testing.T) {
		pagesDemo(t, b, 20*time.Second, func(name string) string {
			return page("/demos/one2one.html", "room=pages1&display="+name)
		}, "alice", "bob")
	})
	t.Run("room", func(t *testing.T) {
		pagesDemo(t, b, 30*time.Second, func(name string) string {
			return page("/demos/room.html", "room=pages3&display="+name)
		}, "ann", "ben", "cat")
	})
}

func decoding(s pageStats) bool {
	return s.Error == "" && s.State == "connected" && s.FramesDecoded > 0
}

// pagesPublishPlay opens a publisher page, and once it is connected, a
// player page of the same stream, and waits for decoded frames.
func pagesPublishPlay(t *testing.T, b *pagesBrowser, pubURL, playURL string) {
	start := time.Now()
	pub := b.tab(t, "publisher", pubURL)
	b.waitAll(t, 10*time.Second, map[string]context.Context{"publisher": pub}, func(s pageStats) bool {
		return s.State == "connected" || s.Error != ""
	})
	play := b.tab(t, "player", playURL)
	got := b.waitAll(t, 15*time.Second, map[string]context.Context{"player": play}, decoding)
	if s := evalStats(t, pub); s.Error != "" || s.FramesSent == 0 || s.State != "connected" {
		t.Errorf("publisher page: %+v", s)
	}
	t.Logf("player decodes %s %v after the publisher's tab opened", got["player"].Codec, time.Since(start).Round(time.Millisecond))
}

// pagesDemo opens a demo page for each name in one room and waits until
// every page decodes every other participant.
func pagesDemo(t *testing.T, b *pagesBrowser, d time.Duration, url func(name string) string, names ...string) {
	tabs := map[string]context.Context{}
	for _, name := range names {
		tabs[name] = b.tab(t, name, url(name))
	}
	got := b.waitAll(t, d, tabs, func(s pageStats) bool {
		return s.Error == "" && len(s.Remotes) == len(names)-1 && all(s.Remotes, decoding)
	})
	for _, name := range names {
		s := got[name]
		frames := []string{}
		for _, other := range names {
			r, ok := s.Remotes[other]
			if other != name && !ok {
				t.Errorf("%s does not play %s: %v", name, other, s.Remotes)
			}
			if ok {
				frames = append(frames, fmt.Sprintf("%s %d", other, r.FramesDecoded))
			}
		}
		t.Logf("%s: sent %d frames; decoded %s", name, s.Self.FramesSent, strings.Join(frames, ", "))
	}
}

func all(m map[string]pageStats, ok func(pageStats) bool) bool {
	for _, s := range m {
		if !ok(s) {
			return false
		}
	}
	return true
}
