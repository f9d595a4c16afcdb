package node

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fanout/fanout/conf"
)

// TestHTTPTimeouts: net/http's own timeouts cut the connection and are
// counted on fanout_limit_refusals_total under their directive's name:
// http_idle_timeout (a keep-alive connection left idle, over HTTP and
// HTTPS) and
// http_write_timeout (an answer not written in time: a WHIP publish held
// by a slow on_publish hook). http_header_size and http_read_timeout are
// in TestLimitStatuses.
func TestHTTPTimeouts(t *testing.T) {
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		fmt.Fprint(w, `{"code":0}`)
	}))
	defer hooks.Close()
	text := strings.Replace(testConfig, "http_api { enabled on; listen 1985; }",
		"http_api { enabled on; listen 1985; https { enabled on; listen 1990; } }", 1)
	cfg, err := conf.Parse("timeouts.conf", []byte(text+fmt.Sprintf(`limits { http_write_timeout 0.5; http_idle_timeout 0.5; }
vhost slow.example { rtc { enabled on; } http_hooks { enabled on; on_publish %s; } }`, hooks.URL)), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0", HTTPSAPIListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	checkIdleCut(t, func() (net.Conn, error) { return net.Dial("tcp", srv.APIAddr().String()) })
	checkIdleCut(t, func() (net.Conn, error) { // the HTTPS listener: counted below its TLS
		return tls.Dial("tcp", srv.apiTLS.String(), &tls.Config{InsecureSkipVerify: true})
	})
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := c.Post(srv.url("/rtc/v1/whip/?vhost=slow.example&app=live&stream=s"), "application/sdp", strings.NewReader(curlOffer))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a publish held 1.5 s by its hook was answered %d, want the connection cut (http_write_timeout 0.5)", resp.StatusCode)
	}
	t.Logf("publish behind a slow hook: %v after %v", err, time.Since(start).Round(time.Millisecond))
	m := scrape(t, srv)
	for limit, want := range map[string]float64{"http_idle_timeout": 2, "http_write_timeout": 1,
		"http_read_timeout": 0, "http_header_size": 0} {
		if got := m[`fanout_limit_refusals_total{limit="`+limit+`"}`]; got != want {
			t.Errorf("fanout_limit_refusals_total{limit=%q} = %v, want %v", limit, got, want)
		}
	}
}

// checkIdleCut: a keep-alive connection that sends nothing after its
// answer is closed after http_idle_timeout (0.5 s here).
func checkIdleCut(t *testing.T, dial func() (net.Conn, error)) {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /api/v1/versions HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %d, close %v", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	if took := time.Since(start); err != io.EOF || took > 3*time.Second {
		t.Errorf("an idle keep-alive connection: %v after %v, want EOF after about 0.5 s", err, took)
	}
}
