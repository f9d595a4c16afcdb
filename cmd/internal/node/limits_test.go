package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// startLimited runs a Fanout on loopback with the extra config (a
// `limits { }` block…) and WebRTC over TCP on its own port.
func startLimited(t testing.TB, extra string) *Server {
	t.Helper()
	return startWithTCP(t, testConfig+extra)
}

// startWithTCP runs a Fanout on loopback with the config text plus WebRTC
// over TCP on its own port.
func startWithTCP(t testing.TB, text string) *Server {
	t.Helper()
	text = strings.Replace(text, "candidate 127.0.0.1; }", "candidate 127.0.0.1; protocol all; tcp { enabled on; } }", 1)
	cfg, err := conf.Parse("limits.conf", []byte(text), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0", TCPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// offerSDP is a complete pion offer: H.264 + Opus sendonly (publish) or
// recvonly (play). The peer is closed at once: the offer is only text.
func limitOfferSDP(t testing.TB, play bool) string {
	t.Helper()
	pc := newPeer(t)
	defer pc.Close()
	if play {
		addRecvonly(t, pc)
	} else {
		for _, mime := range []string{webrtc.MimeTypeOpus, webrtc.MimeTypeH264} {
			tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, "t", "s")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sdp, gathered := localOffer(t, pc)
	<-gathered
	return sdp()
}

// clientFrom is an HTTP client whose connections leave from src, one
// connection per request.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// postFrom sends an offer from src; it returns the status, Retry-After and body.
func postFrom(t testing.TB, c *http.Client, url, sdp string) (int, string, string) {
	t.Helper()
	resp, err := c.Post(url, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// TestLimitStatuses: each capacity and size limit answers its status with
// Retry-After where it applies and a one-line reason, and is counted on
// /metrics under its name: publishers_per_ip, players_per_stream and
// max_connections (503), sdp_size and http_body_size (413), http_header_size
// (431, net/http's own, counted at the connection: httpLimit),
// http_read_timeout (a slow client is cut) and tcp_connections_per_ip (the
// connection is closed at accept). The other HTTP timeouts: TestHTTPTimeouts.
func TestLimitStatuses(t *testing.T) {
	srv := startLimited(t, `max_connections 4;
limits { exempt_loopback off; publishers_per_ip 1; players_per_stream 2; sdp_size 16384; http_body_size 20000;
  http_header_size 1024; http_read_timeout 1; tcp_connections_per_ip 2; }`)
	pub, play := limitOfferSDP(t, false), limitOfferSDP(t, true)
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	steps := []struct {
		name  string
		c     *http.Client
		path  string
		sdp   string
		want  int
		limit string
	}{
		{"publish a", one, "/rtc/v1/whip/?app=live&stream=a", pub, 201, ""},
		{"second publisher from one IP", one, "/rtc/v1/whip/?app=live&stream=b", pub, 503, "publishers_per_ip"},
		{"player 1", one, "/rtc/v1/whep/?app=live&stream=a", play, 201, ""},
		{"player 2", two, "/rtc/v1/whep/?app=live&stream=a", play, 201, ""},
		{"player 3 of a", two, "/rtc/v1/whep/?app=live&stream=a", play, 503, "players_per_stream"},
		{"publish b from another IP", two, "/rtc/v1/whip/?app=live&stream=b", pub, 201, ""},
		{"fifth session", two, "/rtc/v1/whep/?app=live&stream=b", play, 503, "max_connections"},
		{"offer over sdp_size", two, "/rtc/v1/whep/?app=live&stream=b", play + strings.Repeat("a=x\r\n", 3000), 413, "sdp_size"},
		{"legacy body over http_body_size", two, "/rtc/v1/play/", strings.Repeat(" ", 30000), 413, "http_body_size"},
	}
	for _, s := range steps {
		code, retry, body := postFrom(t, s.c, srv.url(s.path), s.sdp)
		if code != s.want {
			t.Fatalf("%s: %d %q, want %d", s.name, code, body, s.want)
		}
		if code == 503 && retry == "" || code >= 400 && strings.Count(body, "\n") != 1 {
			t.Errorf("%s: Retry-After %q, reason %q", s.name, retry, body)
		}
		if code >= 400 {
			t.Logf("%s: %d %s", s.name, code, strings.TrimSpace(body))
		}
	}
	if code, _, _ := httpDo(t, "GET", srv.url("/api/v1/versions"), map[string]string{"X-Big": strings.Repeat("h", 8<<10)}, ""); code != 431 {
		t.Errorf("oversized header: %d, want 431", code)
	}
	checkSlowClientCut(t, srv)
	checkTCPPerIP(t, srv)
	m := scrape(t, srv)
	for limit, want := range map[string]float64{"publishers_per_ip": 1, "players_per_stream": 1, "max_connections": 1,
		"sdp_size": 1, "http_body_size": 1, "tcp_connections_per_ip": 1, "http_header_size": 1, "http_read_timeout": 1} {
		if got := m[`fanout_limit_refusals_total{limit="`+limit+`"}`]; got != want {
			t.Errorf("fanout_limit_refusals_total{limit=%q} = %v, want %v", limit, got, want)
		}
	}
}

// checkSlowClientCut: a client that never finishes its request headers is
// disconnected after http_read_timeout (1 s here).
func checkSlowClientCut(t *testing.T, srv *Server) {
	t.Helper()
	c, err := net.Dial("tcp", srv.APIAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /rtc/v1/whip/ HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a slow client was kept %v (err %v), want about 1 s", took, err)
	}
}

// checkTCPPerIP: a third WebRTC-over-TCP connection from one IP is closed
// at accept (tcp_connections_per_ip 2); the first two stay open.
func checkTCPPerIP(t *testing.T, srv *Server) {
	t.Helper()
	addr := srv.tcpSrv.Addr().String()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	_ = conns[2].SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err != io.EOF && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Errorf("third TCP connection from one IP: %v, want closed", err)
	}
	_ = conns[0].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := conns[0].Read(make([]byte, 1)); !isTimeout(err) {
		t.Errorf("first TCP connection: %v, want still open", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestWHIPFloodLimited: 1,000 WHIP offers, each on its own connection,
// from 127.0.0.1 are held to the per-IP rates (429 + Retry-After) and the
// publisher bound (503), counted on /metrics; meanwhile a publisher from
// 127.0.0.2 publishes and connects.
func TestWHIPFloodLimited(t *testing.T) {
	srv := startLimited(t, `limits { exempt_loopback off; }`)
	sdp := limitOfferSDP(t, false)
	flood := clientFrom("127.0.0.1")
	var mu sync.Mutex
	codes := map[int]int{}
	noRetry := 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				code, retry, _ := postFrom(t, flood, srv.url(fmt.Sprintf("/rtc/v1/whip/?app=flood&stream=s%d", i)), sdp)
				mu.Lock()
				codes[code]++
				if (code == 429 || code == 503) && retry == "" {
					noRetry++
				}
				mu.Unlock()
			}
		})
	}
	other := make(chan *testPublisher, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // in the middle of the flood
		other <- publishFrom(t, srv, "127.0.0.2", "app=live&stream=other")
	}()
	for i := range 1000 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	p := <-other
	if p == nil {
		t.Fatal("the other IP's publish failed")
	}
	t.Logf("flood of 1000 offers in %v: %v", took.Round(time.Millisecond), codes)
	// Past the request bucket: its burst of 100 and 50/s refilled over the flood.
	passed := 100 + int(50*took.Seconds()) + 1
	if codes[201] > 16 || codes[429] < 1000-passed || codes[201]+codes[429]+codes[503] != 1000 || noRetry != 0 {
		t.Errorf("statuses %v (%d refusals without Retry-After): want at most 16 created, the rest 429/503", codes, noRetry)
	}
	m := scrape(t, srv)
	rate := m[`fanout_limit_refusals_total{limit="requests_per_ip"}`] + m[`fanout_limit_refusals_total{limit="sessions_per_ip"}`]
	if int(rate) != codes[429] || int(m[`fanout_limit_refusals_total{limit="publishers_per_ip"}`]) != codes[503] {
		t.Errorf("metrics: rate refusals %v for %d 429s, publishers_per_ip %v for %d 503s", rate, codes[429],
			m[`fanout_limit_refusals_total{limit="publishers_per_ip"}`], codes[503])
	}
}

// publishFrom publishes with a pion peer whose WHIP request leaves from
// src, and waits for it to connect; nil (and a test error) on failure.
func publishFrom(t *testing.T, srv *Server, src, query string) *testPublisher {
	p := &testPublisher{pc: newPeer(t)}
	var err error
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "s")
	if err == nil {
		_, err = p.pc.AddTransceiverFromTrack(p.video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	}
	if err != nil {
		t.Error(err)
		return nil
	}
	sdp, gathered := localOffer(t, p.pc)
	<-gathered
	code, _, body := postFrom(t, clientFrom(src), srv.url("/rtc/v1/whip/?"+query), sdp())
	if code != 201 {
		t.Errorf("publish from %s: %d %s", src, code, body)
		return nil
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Error(err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if ctx.Err() != nil {
			t.Errorf("publisher from %s: %v", src, p.pc.ConnectionState())
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// TestQueueDropsExported: every bounded queue a peer can fill has its drop
// counter on /metrics, at zero on an idle server.
func TestQueueDropsExported(t *testing.T) {
	srv := startLimited(t, "")
	m := scrape(t, srv)
	for _, name := range []string{`fanout_queue_drops_total{queue="dtls_records"}`, `fanout_queue_drops_total{queue="hub_inbox"}`,
		`fanout_queue_drops_total{queue="hub_readers"}`, `fanout_queue_drops_total{queue="signaling_clients"}`,
		`fanout_tcp_write_overflow_total`, `fanout_limit_refusals_total{limit="tcp_connections_per_ip"}`} {
		if v, ok := m[name]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
}

// TestReadTimeoutSparesSlowHooks: http_read_timeout bounds reading the
// request, not what follows: an on_play hook that takes longer than it
// still lets the offer through.
func TestReadTimeoutSparesSlowHooks(t *testing.T) {
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		fmt.Fprint(w, `{"code":0}`)
	}))
	defer hooks.Close()
	srv := startTestServerConfig(t, testConfig+fmt.Sprintf(`limits { http_read_timeout 1; }
vhost slow.example { rtc { enabled on; } http_hooks { enabled on; on_play %s; } }`, hooks.URL))
	code, _, body := post(t, srv.url("/rtc/v1/whep/?vhost=slow.example&app=live&stream=s"), "application/sdp", limitOfferSDP(t, true))
	if code != http.StatusCreated {
		t.Fatalf("offer behind a 1.5 s hook with a 1 s read timeout: %d %s", code, body)
	}
}
