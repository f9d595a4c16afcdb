package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSIGTERMDrain runs the real binary: `make run`'s URLs are printed, and
// SIGTERM with a live session refuses new sessions (503), cuts the live one
// at the drain timeout and exits 0.
func TestSIGTERMDrain(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fanout")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
