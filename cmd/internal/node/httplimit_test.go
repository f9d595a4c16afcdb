package node

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPLimitWhoseDeadline: only the server's deadlines count. A
// handler's own write deadline (as HTTP-FLV sets one) cutting its answer,
// and net/http's wake-up of its background read after each request, are
// not http_write_timeout or http_read_timeout refusals.
func TestHTTPLimitWhoseDeadline(t *testing.T) {
	var l httpLimit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<20)
	hs := &http.Server{ConnState: l.connState, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/own" {
				_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = io.WriteString(w, big) // the client does not read: cut by the handler's deadline
				return
			}
			_, _ = io.WriteString(w, "ok")
		})}
	go func() { _ = hs.Serve(l.listener(ln)) }()
	defer hs.Close()
	url := "http://" + ln.Addr().String()
	for range 20 {
		resp, err := http.Post(url+"/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(time.Second) // the handler's 100 ms pass with nothing read
	if got := l.refusals(); got[limitWriteTimeout] != 0 || got[limitReadTimeout] != 0 || got[limitIdleTimeout] != 0 {
		t.Errorf("refusals %v, want none", got)
	}
}
