package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/fanout/fanout/conf"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// TestStreamsClientsKick: the SRS-style API sees a publisher and two
// players, and DELETE of a client ends its session at once.
func TestStreamsClientsKick(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	q := "app=live&stream=api"
	pub := newTestPublisher(t, srv, q)
	p1, p2 := newTestPlayer(t, srv, q), newTestPlayer(t, srv, q)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pub.stream(ctx, t, h264, ogg)

	var streams struct {
		Code    int `json:"code"`
		Streams []struct {
			ID, Name string
			Clients  int
			Publish  struct{ Active bool }
			Video    *struct{ Codec string }
		}
	}
	getJSON(t, srv.url("/api/v1/streams/"), &streams)
	if streams.Code != 0 || len(streams.Streams) != 1 || streams.Streams[0].Clients != 3 || !streams.Streams[0].Publish.Active ||
		streams.Streams[0].Video == nil || streams.Streams[0].Video.Codec != "H264" {
		t.Fatalf("streams: %+v", streams)
	}
	var one struct{ Stream struct{ Name string } }
	if code := getJSON(t, srv.url("/api/v1/streams/"+streams.Streams[0].ID), &one); code != 200 || one.Stream.Name != "api" {
		t.Fatalf("stream by id: %d %+v", code, one)
	}
	var clients struct {
		Clients []struct {
			ID, Type, Session string
			Publish           bool
		}
	}
	getJSON(t, srv.url("/api/v1/clients/"), &clients)
	if len(clients.Clients) != 3 {
		t.Fatalf("clients: %+v", clients)
	}
	var victim string
	types := map[string]int{}
	for _, c := range clients.Clients {
		types[c.Type]++
		if c.Session == sessionOf(p1.res.Location) {
			victim = c.ID
		}
	}
	if types["rtc-publish"] != 1 || types["rtc-play"] != 2 || victim == "" {
		t.Fatalf("types %v victim %q", types, victim)
	}
	if code, _, body := httpDo(t, http.MethodDelete, srv.url("/api/v1/clients/"+victim), nil, ""); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	waitSessions(t, srv, 2)
	// close_notify ends it at once; should that datagram be lost on a busy
	// machine, pion's ICE notices the silence (5 s disconnected timeout).
	deadline := time.Now().Add(10 * time.Second)
	for p1.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatal("the kicked player never noticed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p2.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		t.Errorf("the other player dropped: %v", p2.pc.ConnectionState())
	}
	if code, _, _ := httpDo(t, http.MethodDelete, srv.url("/api/v1/clients/"+victim), nil, ""); code != 404 {
		t.Errorf("second kick: %d", code)
	}
	var ver struct {
		Code int
		Data struct{ Version string }
	}
	if getJSON(t, srv.url("/api/v1/versions"), &ver); ver.Code != 0 || ver.Data.Version == "" {
		t.Errorf("versions: %+v", ver)
	}
	if code := getJSON(t, srv.url("/healthz"), nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func sessionOf(location string) string {
	i := strings.Index(location, "session=")
	if i < 0 {
		return ""
	}
	s := location[i+len("session="):]
	s, _, _ = strings.Cut(s, "&")
	return strings.ReplaceAll(s, "%3A", ":")
}

// TestMetrics parses /metrics: per-core series exist and move with traffic.
func TestMetrics(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	before := scrape(t, srv)
	if _, ok := before[`fanout_fastpath_rx_packets_total{core="0"}`]; !ok {
		t.Fatalf("no per-core series: %v", keys(before))
	}
	q := "app=live&stream=metrics"
	pub := newTestPublisher(t, srv, q)
	newTestPlayer(t, srv, q)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	after := scrape(t, srv)
	for _, k := range []string{`fanout_fastpath_rx_packets_total{core="0"}`, `fanout_fastpath_tx_packets_total{core="0"}`,
		"srs_send_bytes_total", "srs_receive_bytes_total", "srs_clients_total"} {
		if after[k] <= before[k] {
			t.Errorf("%s did not move: %v → %v", k, before[k], after[k])
		}
	}
	if after["srs_clients"] != 2 || after["srs_streams"] != 1 {
		t.Errorf("clients %v streams %v", after["srs_clients"], after["srs_streams"])
	}
}

func scrape(t testing.TB, srv *Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get(srv.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// metricSample is one labelled line of /metrics.
type metricSample struct {
	name, labels string // labels: the text between the braces
	value        float64
}

// label is the value of label k, or "".
func (s metricSample) label(k string) string {
	for _, kv := range strings.Split(s.labels, ",") {
		if key, val, ok := strings.Cut(kv, "="); ok && key == k {
			return strings.Trim(val, `"`)
		}
	}
	return ""
}

// scrapeLabelled reads the labelled samples of /metrics from api (a base
// URL, as a namespace's peers know it).
func scrapeLabelled(t *testing.T, api string) []metricSample {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []metricSample
	for _, line := range strings.Split(string(body), "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		labels, val, _ := strings.Cut(rest, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		out = append(out, metricSample{name: name, labels: labels, value: v})
	}
	return out
}

func keys(m map[string]float64) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

// TestHooksAndBearer: a hook server's refusal reaches the client as 403
// with its reason; a wrong Bearer token gets 401.
func TestHooksAndBearer(t *testing.T) {
	var got []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Action, Stream, Param string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		got = append(got, ev.Action+":"+ev.Stream)
		if ev.Stream == "banned" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "stream banned by policy")
			return
		}
		fmt.Fprint(w, `{"code":0}`)
	}))
	defer hooks.Close()
	text := strings.Replace(testConfig, "http_api { enabled on; listen 1985; }",
		"http_api { enabled on; listen 1985; auth { bearer_token s3cret; } }", 1)
	srv := startTestServerConfig(t, text+fmt.Sprintf(`vhost hooked.example { rtc { enabled on; }
  http_hooks { enabled on; on_publish %[1]s; on_unpublish %[1]s; on_play %[1]s; on_stop %[1]s; } }`, hooks.URL))
	auth := map[string]string{"Content-Type": "application/sdp", "Authorization": "Bearer s3cret"}
	code, _, body := httpDo(t, "POST", srv.url("/rtc/v1/whip/?vhost=hooked.example&app=live&stream=banned"), auth, curlOffer)
	if code != http.StatusForbidden || !strings.Contains(body, "stream banned by policy") {
		t.Fatalf("refused publish: %d %q", code, body)
	}
	code, h, body := httpDo(t, "POST", srv.url("/rtc/v1/whip/?vhost=hooked.example&app=live&stream=ok"), auth, curlOffer)
	if code != http.StatusCreated {
		t.Fatalf("accepted publish: %d %s", code, body)
	}
	if code, _, _ := httpDo(t, http.MethodDelete, srv.url(h.Get("Location")), nil, ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	waitSessions(t, srv, 0)
	deadline := time.Now().Add(3 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Join(got, ",") != "on_publish:banned,on_publish:ok,on_unpublish:ok" {
		t.Errorf("hook calls: %v", got)
	}
	for _, tok := range []string{"", "Bearer wrong", "Basic s3cret"} {
		hdr := map[string]string{"Content-Type": "application/sdp"}
		if tok != "" {
			hdr["Authorization"] = tok
		}
		code, h, _ := httpDo(t, "POST", srv.url("/rtc/v1/whip/?app=live&stream=x"), hdr, curlOffer)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("token %q: %d %v", tok, code, h)
		}
	}
}

// TestGrafanaDashboard: every series the shipped dashboard queries exists.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../../conf/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	srv := startTestServer(t, "")
	have := map[string]bool{}
	for k := range scrape(t, srv) {
		name, _, _ := strings.Cut(k, "{")
		have[name] = true
	}
	re := regexp.MustCompile(`\b(srs|fanout|process|go)_[a-z_]+\b`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				n++
				if !have[m] {
					t.Errorf("dashboard queries %s, which /metrics does not export", m)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d series found in the dashboard", n)
	}
}

// TestSessionSummaryLine: a session's end is one log line with duration,
// codecs, transport and its media counters.
func TestSessionSummaryLine(t *testing.T) {
	h264, ogg := mediaFiles(t)
	cfg, err := conf.Parse("test.conf", []byte(testConfig), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv, err := start(cfg, slog.New(slog.NewTextHandler(&logs, nil)), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pub := newTestPublisher(t, srv, "app=live&stream=summary")
	player := newTestPlayer(t, srv, "app=live&stream=summary")
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	if code, _, _ := httpDo(t, http.MethodDelete, srv.url(player.res.Location), nil, ""); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	waitSessions(t, srv, 1)
	line := waitLogLine(&logs, func(l string) bool { return strings.Contains(l, "role=play") })
	t.Log(line)
	for _, want := range []string{`reason="http delete"`, "transport=udp", "video=H264", "audio=opus", "packets=", "bytes="} {
		if !strings.Contains(line, want) {
			t.Errorf("summary line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "bytes=0 ") {
		t.Errorf("no bytes counted: %s", line)
	}
}
