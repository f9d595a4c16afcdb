package node

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium binary. The /usr/bin/chromium wrapper
// reads /etc/chromium.d and adds flags and variables, so the test runs the
// real binary.
const chromiumPath = "/usr/lib/chromium/chromium"

// chromiumPage publishes the fake camera by WHIP and plays it back by WHEP.
//
//go:embed testdata/chromium/page.html
var chromiumPage string

// TestChromiumPublishPlay publishes Chromium's fake camera and microphone to
// Fanout by WHIP and plays the stream back in the same page by WHEP, once
// with H.264 and once with VP8. The page is on another origin than the API,
// so the offers, the Location header and the DELETEs go through CORS.
func TestChromiumPublishPlay(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	for _, tc := range []struct {
		name, query, mime string
	}{
		{"codec=h264", "", "H264"},
		{"codec=vp8", "&codec=vp8", "VP8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runChromiumPublishPlay(t, tc.query, tc.mime)
		})
	}
}

// chromiumProbe is what the page's probe() returns.
type chromiumProbe struct {
	Phase        string           `json:"phase"`
	Error        string           `json:"error"`
	Marks        map[string]int64 `json:"marks"`
	PubLocation  string           `json:"pubLocation"`
	PlayLocation string           `json:"playLocation"`
	Pub          chromiumPCStats  `json:"pub"`
	Play         chromiumPCStats  `json:"play"`
}

type chromiumPCStats struct {
	State           string `json:"state"`
	SRTPCipher      string `json:"srtpCipher"`
	DTLSCipher      string `json:"dtlsCipher"`
	TLSVersion      string `json:"tlsVersion"`
	DTLSRole        string `json:"dtlsRole"`
	FramesDecoded   int    `json:"framesDecoded"`
	FramesSent      int    `json:"framesSent"`
	Codec           string `json:"codec"`
	PacketsReceived int    `json:"packetsReceived"`
	PacketsLost     int    `json:"packetsLost"`
	AudioPackets    int    `json:"audioPackets"`
	Pair            string `json:"pair"` // the selected ICE candidate pair
}

func runChromiumPublishPlay(t *testing.T, codecQuery, wantMime string) {
	p := runChromiumOn(t, startTestServer(t, ""), codecQuery, wantMime)
	// Default dtls_role (auto): a browser's offer is answered passive, so
	// Chromium is the DTLS client and takes the GCM profile Fanout lists
	// first (as the server it would choose AES_CM_128_HMAC_SHA1_80).
	for _, pc := range []struct {
		name string
		st   chromiumPCStats
	}{{"publisher", p.Pub}, {"player", p.Play}} {
		if pc.st.DTLSRole != "client" || pc.st.SRTPCipher != "SRTP_AEAD_AES_128_GCM" {
			t.Errorf("%s: Chromium DTLS role %q, SRTP %q; want client, SRTP_AEAD_AES_128_GCM", pc.name, pc.st.DTLSRole, pc.st.SRTPCipher)
		}
	}
}

// runChromiumOn publishes and plays through srv and returns the page's
// last probe.
func runChromiumOn(t *testing.T, srv *Server, codecQuery, wantMime string) chromiumProbe {
	begin := time.Now()
	stream := "chromium-" + strings.ToLower(wantMime)
	whipURL := srv.url("/rtc/v1/whip/?app=live&stream=" + stream + codecQuery)
	whepURL := srv.url("/rtc/v1/whep/?app=live&stream=" + stream)

	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(chromiumPage))
	}))
	defer page.Close()
	if u, _ := url.Parse(page.URL); u.Hostname() != "127.0.0.1" {
		t.Fatalf("page server on %s, want 127.0.0.1", page.URL)
	}

	var out lockedBuffer
	opts, profile := chromiumOptions(t, &out,
		chromedp.Flag("disable-quic", true),
		// Without it Chromium gathers no candidate when the only route
		// is loopback, and ignores the loopback candidate of the server.
		chromedp.Flag("allow-loopback-in-peer-connection", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	closed := false
	closeBrowser := func() {
		if closed {
			return
		}
		closed = true
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		checkNoChromium(t, profile)
	}
	defer closeBrowser()
	ctx, cancelTimeout := context.WithTimeout(ctx, 28*time.Second)
	defer cancelTimeout()

	var consoleMu sync.Mutex
	var console []string
	t0 := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	browserStart := time.Since(t0)
	go func() {
		for msg, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			consoleMu.Lock()
			console = append(console, fmt.Sprintf("%s: %s", msg.Type, msg.Text))
			consoleMu.Unlock()
		}
	}()
	diagnose := func() {
		t.Helper()
		consoleMu.Lock()
		t.Logf("browser console:\n%s", strings.Join(console, "\n"))
		consoleMu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if dump, err := chromedp.Run(dctx, chromedp.Evaluate[string]("dump()", chromedp.EvalAwaitPromise)); err == nil {
			t.Logf("getStats dump:\n%s", dump)
		} else {
			t.Logf("getStats dump: %v", err)
		}
		if s := out.String(); s != "" {
			t.Logf("browser output:\n%s", s)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("navigate to %s: %v", page.URL, err)
	}
	args, _ := json.Marshal([]string{whipURL, whepURL, wantMime})
	t1 := time.Now()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("start(..."+string(args)+")")); err != nil {
		t.Fatalf("start(): %v", err)
	}

	// Wait for the first decoded frame of the WHEP player.
	var p chromiumProbe
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string]("probe()", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("probe(): %v", err)
		}
		p = chromiumProbe{}
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatalf("probe() result %q: %v", raw, err)
		}
		if p.Error != "" {
			diagnose()
			t.Fatalf("page failed in phase %s: %s", p.Phase, p.Error)
		}
		if p.Play.FramesDecoded > 0 {
			break
		}
		if time.Now().After(deadline) {
			diagnose()
			t.Fatalf("no decoded frame after 20s: %s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	firstFrame := time.Since(t1)

	if p.Pub.State != "connected" || p.Play.State != "connected" {
		t.Errorf("connection states: publisher %q, player %q, want connected", p.Pub.State, p.Play.State)
	}
	if want := "video/" + wantMime; !strings.EqualFold(p.Play.Codec, want) {
		t.Errorf("player decodes %q, want %q", p.Play.Codec, want)
	}
	if want := "video/" + wantMime; !strings.EqualFold(p.Pub.Codec, want) {
		t.Errorf("publisher sends %q, want %q", p.Pub.Codec, want)
	}
	if p.Pub.SRTPCipher == "" || p.Play.SRTPCipher == "" {
		t.Errorf("no SRTP cipher in the transport stats: publisher %q, player %q", p.Pub.SRTPCipher, p.Play.SRTPCipher)
	}
	t.Logf("publish: SRTP %s, DTLS %s %s, Chromium DTLS role %s, codec %s, pair %s",
		p.Pub.SRTPCipher, p.Pub.TLSVersion, p.Pub.DTLSCipher, p.Pub.DTLSRole, p.Pub.Codec, p.Pub.Pair)
	t.Logf("play:    SRTP %s, DTLS %s %s, Chromium DTLS role %s, codec %s, pair %s",
		p.Play.SRTPCipher, p.Play.TLSVersion, p.Play.DTLSCipher, p.Play.DTLSRole, p.Play.Codec, p.Play.Pair)
	m := p.Marks
	t.Logf("browser start %v; first decoded frame %v after start(), %dms after the WHEP offer began (page marks, ms since start(): %v)",
		browserStart.Round(time.Millisecond), firstFrame.Round(time.Millisecond), m["firstFrame"]-m["playStart"], m)

	// Hang up from the page, so that the DELETEs are cross-origin too.
	for _, loc := range []string{p.PlayLocation, p.PubLocation} {
		arg, _ := json.Marshal(loc)
		code, err := chromedp.Run(ctx, chromedp.Evaluate[int]("hangup("+string(arg)+")", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("DELETE %s from the page: %v", loc, err)
		}
		if code != http.StatusOK {
			t.Errorf("DELETE %s from the page: %d, want 200", loc, code)
		}
	}
	waitSessions(t, srv, 0)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("closeAll()")); err != nil {
		t.Errorf("closeAll(): %v", err)
	}
	closeBrowser()
	t.Logf("subtest took %v", time.Since(begin).Round(time.Millisecond))
	return p
}

// chromiumOptions are the flags every browser test uses (testing-here.md
// §1): headless, fake camera and microphone, no background networking, a
// fresh profile and temp dir under t.TempDir(). It returns the profile dir,
// which checkNoChromium looks for.
func chromiumOptions(t *testing.T, out io.Writer, extra ...chromedp.ExecAllocatorOption) ([]chromedp.ExecAllocatorOption, string) {
	t.Helper()
	tmp := t.TempDir()
	profile := filepath.Join(tmp, "profile")
	browserTmp := filepath.Join(tmp, "tmp")
	if err := os.MkdirAll(browserTmp, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		// Chromium leaves org.chromium.Chromium.* in $TMPDIR, and its
		// crash reporter writes under $XDG_CONFIG_HOME/chromium whatever
		// the profile.
		chromedp.Env("TMPDIR="+browserTmp, "XDG_CONFIG_HOME="+filepath.Join(tmp, "config")),
		chromedp.CombinedOutput(out),
	}
	return append(opts, extra...), profile
}

// checkNoChromium fails the test when a Chromium process of the profile
// survived the shutdown, and kills it. Every Chromium process carries the
// --user-data-dir of its browser on its command line.
func checkNoChromium(t *testing.T, profile string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := chromiumPIDs(profile)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("chromium processes %v survived the browser's shutdown (killed now)", pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func chromiumPIDs(profile string) []int {
	want := []byte("--user-data-dir=" + profile)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range bytes.Split(cmdline, []byte{0}) {
			if bytes.Equal(arg, want) {
				if !isZombie(pid) {
					pids = append(pids, pid)
				}
				break
			}
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// lockedBuffer collects the browser's output from its reader goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
