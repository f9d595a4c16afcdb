package node

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func freePort(t testing.TB, network string) int {
	t.Helper()
	// The port is handed to a child process that binds it later. A port
	// the kernel picked (127.0.0.1:0) is in the ephemeral range, where any
	// outgoing connection or unbound socket of the test's many peers can
	// take it in between: "address already in use" from a node started
	// under load. Below that range only an explicit bind can.
	lo := ephemeralLow()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		port := portFloor + rand.IntN(max(1, lo-portFloor))
		if portsGiven[port] || !canBind(network, port) {
			continue
		}
		portsGiven[port] = true
		return port
	}
	t.Fatalf("no free %s port in [%d, %d)", network, portFloor, lo)
	return 0
}

// portFloor is the lowest port freePort hands out.
const portFloor = 20000

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{} // never handed out twice by this test binary
)

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	if f := strings.Fields(string(b)); len(f) == 2 {
		if n, err := strconv.Atoi(f[0]); err == nil && n > portFloor+1000 {
			return n
		}
	}
	return 32768
}

func canBind(network string, port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
	}
	return err == nil
}

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
