package node

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fanout/fanout/control/cluster/redistest"
)

// freePort is a loopback port a child process can bind later.
func freePort(t testing.TB, network string) int { return redistest.FreePort(t, network) }

// TestSIGTERMDrain runs the real binary: `make run`'s URLs are printed, and
// SIGTERM with a live session refuses new sessions (503), cuts the live one
// at the drain timeout and exits 0.
func TestSIGTERMDrain(t *testing.T) {
	bin := buildFanout(t)
	api, rtc, rtmp := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	cmd := exec.Command(bin, "-drain", "2s")
	cmd.Env = append(os.Environ(), "CANDIDATE=127.0.0.1", fmt.Sprintf("SRS_HTTP_API_LISTEN=127.0.0.1:%d", api),
		fmt.Sprintf("SRS_RTC_SERVER_LISTEN=%d", rtc), fmt.Sprintf("SRS_LISTEN=127.0.0.1:%d", rtmp), "SRS_HTTP_SERVER_ENABLED=off")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	var urls []string
	for sc.Scan() {
		urls = append(urls, sc.Text())
		if strings.Contains(sc.Text(), "WebRTC media") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	whip := fmt.Sprintf("http://localhost:%d/rtc/v1/whip/?app=live&stream=livestream", api)
	if !strings.Contains(strings.Join(urls, "\n"), whip) {
		t.Fatalf("printed URLs %q lack %s", urls, whip)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", api)
	code, _, body := post(t, base+"/rtc/v1/whip/?app=live&stream=drain", "application/sdp", curlOffer)
	if code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, body)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	code, h, _ := post(t, base+"/rtc/v1/whip/?app=live&stream=late", "application/sdp", curlOffer)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("POST while draining: %d %v", code, h)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(6 * time.Second):
		t.Fatalf("still running 6 s after SIGTERM\n%s", stderr.String())
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("exited after %v, before the 2 s drain with a live session", d)
	}
	if !strings.Contains(stderr.String(), "sessions_cut=1") {
		t.Errorf("log does not report the cut session:\n%s", stderr.String())
	}
}

// buildFanout builds cmd/fanout once per test binary.
var built struct {
	sync.Once
	path string
	err  error
	out  []byte
}

func buildFanout(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		dir, err := os.MkdirTemp("", "fanout-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "fanout")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, "github.com/fanout/fanout/cmd/fanout").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.path
}

// TestSIGHUPReload: SIGHUP re-reads the file, applies vhost options and
// names the sections that need a restart; a broken file is refused.
func TestSIGHUPReload(t *testing.T) {
	bin := buildFanout(t)
	api, rtc, rtmp := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	file := filepath.Join(t.TempDir(), "fanout.conf")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf("listen %d; http_api { enabled on; listen 127.0.0.1:%d; } rtc_server { enabled on; listen %d; candidate 127.0.0.1; }\n", rtmp, api, rtc)
	write(base + "vhost __defaultVhost__ { rtc { enabled on; } }")
	cmd := exec.Command(bin, "-c", file)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/rtc/v1/whip/?app=live&stream=reload", api)
	waitFor(t, func() bool {
		resp, err := http.Post(url, "application/sdp", strings.NewReader(curlOffer))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusCreated
	})
	// Turn RTC off for the vhost and move the API: the first applies now,
	// the second is reported as needing a restart.
	write(strings.Replace(base, fmt.Sprint(api), fmt.Sprint(api+1), 1) + "vhost __defaultVhost__ { rtc { enabled off; } }")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "config reloaded") })
	if !strings.Contains(stderr.String(), "needs_restart=[http_api]") {
		t.Errorf("reload did not name http_api:\n%s", stderr.String())
	}
	url2 := strings.Replace(url, "stream=reload", "stream=reload2", 1)
	if code, _, body := post(t, url2, "application/sdp", curlOffer); code != http.StatusForbidden {
		t.Errorf("after reload with rtc off: %d %s", code, body)
	}
	write("rtc_server { listen nonsense; }")
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "reload refused") })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
