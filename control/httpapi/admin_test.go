package httpapi

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envelopeOK checks SRS's frame: code 0, server, service, pid as a string.
func envelopeOK(t *testing.T, m map[string]any) {
	t.Helper()
	if m["code"] != 0.0 || m["server"] != "vid-test123" || m["service"] != "vid-test123" ||
		m["pid"] != strconv.Itoa(os.Getpid()) {
		t.Errorf("envelope %v", m)
	}
}

func TestVersionsGetAndPost(t *testing.T) {
	h := newHarness(t, nil)
	for _, method := range []string{"GET", "POST"} {
		var v struct {
			Data struct {
				Major, Minor, Revision *int
				Version                string
			}
		}
		envelopeOK(t, h.json(method, "/api/v1/versions", 200, &v))
		if v.Data.Major == nil || v.Data.Minor == nil || v.Data.Revision == nil || v.Data.Version != Version {
			t.Errorf("%s versions: %+v", method, v)
		}
	}
}

func TestSummariesLayout(t *testing.T) {
	h := newHarness(t, nil)
	var s struct {
		Data struct {
			OK     *bool
			NowMs  int64 `json:"now_ms"`
			Self   map[string]any
			System map[string]any
			Fanout map[string]any
		}
	}
	envelopeOK(t, h.json("GET", "/api/v1/summaries", 200, &s))
	if s.Data.OK == nil || time.Since(time.UnixMilli(s.Data.NowMs)) > time.Minute {
		t.Errorf("ok/now_ms: %+v", s.Data)
	}
	for _, k := range []string{"version", "pid", "ppid", "argv", "cwd", "mem_kbyte", "mem_percent", "cpu_percent",
		"srs_uptime"} {
		if _, ok := s.Data.Self[k]; !ok {
			t.Errorf("data.self lacks %s", k)
		}
	}
	for _, k := range []string{"cpu_percent", "disk_read_KBps", "disk_write_KBps", "disk_busy_percent",
		"mem_ram_kbyte", "mem_ram_percent", "mem_swap_kbyte", "mem_swap_percent", "cpus", "cpus_online", "uptime",
		"ilde_time", "load_1m", "load_5m", "load_15m", "net_sample_time", "net_recv_bytes", "net_send_bytes",
		"net_recvi_bytes", "net_sendi_bytes", "srs_sample_time", "srs_recv_bytes", "srs_send_bytes", "conn_sys",
		"conn_sys_et", "conn_sys_tw", "conn_sys_udp", "conn_srs"} {
		if _, ok := s.Data.System[k]; !ok {
			t.Errorf("data.system lacks %s", k)
		}
	}
	if s.Data.Self["pid"] != float64(os.Getpid()) || s.Data.System["cpus"].(float64) < 1 {
		t.Errorf("self %v system %v", s.Data.Self, s.Data.System)
	}
	if _, ok := s.Data.Fanout["fastpath"]; !ok {
		t.Errorf("data.fanout: %v", s.Data.Fanout)
	}
}

func sampleStreams() []StreamInfo {
	st := StreamInfo{ID: "vid-s1", Name: "cam", Vhost: "__defaultVhost__", VhostID: VhostID("__defaultVhost__"),
		App: "live", TcURL: "webrtc://__defaultVhost__/live", URL: "/live/cam", LiveMs: 1, Clients: 2, RecvBytes: 10,
		SendBytes: 20, Video: Video("H264", "level-asymmetry-allowed=1;profile-level-id=42e01f;packetization-mode=1"),
		Audio: Audio("opus", 48000, 2)}
	st.Publish.Active, st.Publish.CID = true, "c1"
	return []StreamInfo{st, {ID: "vid-s2", Name: "idle", Vhost: "v2", VhostID: VhostID("v2"), App: "live",
		URL: "/live/idle", Clients: 1}}
}

func TestStreamsShape(t *testing.T) {
	h := newHarness(t, nil)
	h.reg.streams = sampleStreams()
	var list struct {
		Streams []map[string]any
	}
	envelopeOK(t, h.json("GET", "/api/v1/streams/", 200, &list))
	if len(list.Streams) != 2 {
		t.Fatalf("streams %v", list.Streams)
	}
	s := list.Streams[0]
	for _, k := range []string{"id", "name", "vhost", "app", "tcUrl", "url", "live_ms", "clients", "frames",
		"audio_frames", "video_frames", "send_bytes", "recv_bytes", "kbps", "publish", "video", "audio"} {
		if _, ok := s[k]; !ok {
			t.Errorf("stream lacks %s", k)
		}
	}
	video, audio := s["video"].(map[string]any), s["audio"].(map[string]any)
	if s["vhost"] != VhostID("__defaultVhost__") || video["codec"] != "H264" || video["profile"] != "Baseline(Constrained)" ||
		video["level"] != "3.1" || audio["codec"] != "Opus" || audio["sample_rate"] != 48000.0 || audio["channel"] != 2.0 {
		t.Errorf("stream %v", s)
	}
	if p := s["publish"].(map[string]any); p["active"] != true || p["cid"] != "c1" {
		t.Errorf("publish %v", p)
	}
	if list.Streams[1]["video"] != nil || list.Streams[1]["audio"] != nil {
		t.Errorf("no tracks must be null: %v", list.Streams[1])
	}
	var one struct{ Stream map[string]any }
	h.json("GET", "/api/v1/streams/vid-s2", 200, &one)
	if one.Stream["name"] != "idle" {
		t.Errorf("by id: %v", one)
	}
	m := h.json("GET", "/api/v1/streams/vid-nope", 404, nil)
	if m["code"] != 2048.0 {
		t.Errorf("unknown stream: %v", m)
	}
	if resp, _ := h.do("POST", "/api/v1/streams/", ""); resp.StatusCode != 405 {
		t.Errorf("POST streams: %d", resp.StatusCode)
	}
}

func TestClientsAndKick(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 12 {
		h.reg.clients = append(h.reg.clients, ClientInfo{ID: "c" + strconv.Itoa(i), Type: "rtc-play",
			VhostID: VhostID("v"), Stream: "vid-s1", Session: "a:b"})
	}
	var list struct{ Clients []map[string]any }
	envelopeOK(t, h.json("GET", "/api/v1/clients/", 200, &list))
	if len(list.Clients) != 12 {
		t.Fatalf("clients: %d", len(list.Clients))
	}
	for _, k := range []string{"id", "vhost", "stream", "ip", "pageUrl", "swfUrl", "tcUrl", "url", "name", "type",
		"publish", "alive", "send_bytes", "recv_bytes", "kbps"} {
		if _, ok := list.Clients[0][k]; !ok {
			t.Errorf("client lacks %s", k)
		}
	}
	h.json("GET", "/api/v1/clients/?start=1&count=3", 200, &list) // SRS: count is at least 10
	if len(list.Clients) != 10 || list.Clients[0]["id"] != "c1" {
		t.Errorf("paging: %d %v", len(list.Clients), list.Clients[0])
	}
	var one struct{ Client map[string]any }
	if h.json("GET", "/api/v1/clients/c3", 200, &one); one.Client["id"] != "c3" {
		t.Errorf("by id: %v", one)
	}
	envelopeOK(t, h.json("DELETE", "/api/v1/clients/c3", 200, nil))
	if len(h.reg.kicked) != 1 || h.reg.kicked[0] != "c3" {
		t.Fatalf("kicked %v", h.reg.kicked)
	}
	if m := h.json("DELETE", "/api/v1/clients/c3", 404, nil); m["code"] != 2049.0 {
		t.Errorf("second kick: %v", m)
	}
	if resp, _ := h.do("DELETE", "/api/v1/clients/", ""); resp.StatusCode != 405 {
		t.Errorf("DELETE without id: %d", resp.StatusCode)
	}
	// JSONP: SRS's ?callback= with ?method=DELETE.
	resp, body := h.do("GET", "/api/v1/clients/c4?callback=cb&method=DELETE", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "cb({") || !strings.HasSuffix(body, "})") ||
		resp.Header.Get("Content-Type") != "text/javascript" || h.reg.kicked[1] != "c4" {
		t.Errorf("jsonp: %d %q %v", resp.StatusCode, body, h.reg.kicked)
	}
	if resp, _ := h.do("GET", "/api/v1/clients/?callback=alert(1)", ""); resp.StatusCode != 400 {
		t.Errorf("bad callback: %d", resp.StatusCode)
	}
}

func TestVhostsShape(t *testing.T) {
	h := newHarness(t, nil)
	h.reg.streams = sampleStreams()
	h.reg.vhosts = []Vhost{{Name: "__defaultVhost__", Enabled: true, HLS: true, HLSFragment: 10 * time.Second},
		{Name: "v2", Enabled: false}}
	var list struct{ Vhosts []map[string]any }
	envelopeOK(t, h.json("GET", "/api/v1/vhosts/", 200, &list))
	if len(list.Vhosts) != 2 {
		t.Fatalf("vhosts %v", list.Vhosts)
	}
	v := list.Vhosts[0]
	for _, k := range []string{"id", "name", "enabled", "clients", "streams", "send_bytes", "recv_bytes", "kbps", "hls"} {
		if _, ok := v[k]; !ok {
			t.Errorf("vhost lacks %s", k)
		}
	}
	if v["id"] != VhostID("__defaultVhost__") || v["clients"] != 2.0 || v["streams"] != 1.0 ||
		v["hls"].(map[string]any)["fragment"] != 10.0 || list.Vhosts[1]["streams"] != 0.0 {
		t.Errorf("vhosts %v", list.Vhosts)
	}
	var one struct{ Vhost map[string]any }
	if h.json("GET", "/api/v1/vhosts/"+VhostID("v2"), 200, &one); one.Vhost["name"] != "v2" {
		t.Errorf("by id: %v", one)
	}
	if m := h.json("GET", "/api/v1/vhosts/vid-nope", 404, nil); m["code"] != 2014.0 {
		t.Errorf("unknown vhost: %v", m)
	}
}

func TestOtherSRSRoutes(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/api/", "/api/v1/", "/api/v1/rusages", "/api/v1/self_proc_stats",
		"/api/v1/system_proc_stats", "/api/v1/meminfos", "/api/v1/authors", "/api/v1/features",
		"/api/v1/clusters?vhost=x", "/api/v1/raw?rpc=raw"} {
		envelopeOK(t, h.json("GET", path, 200, nil))
	}
	var raw struct{ Code int }
	if h.json("GET", "/api/v1/raw?rpc=reload", 403, &raw); raw.Code != 1061 {
		t.Errorf("raw reload: %+v", raw)
	}
	for _, path := range []string{"/api/v2/", "/api/v1/nope", "/api/v1/versions/x"} {
		if resp, _ := h.do("GET", path, ""); resp.StatusCode != 404 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := h.do("GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

func TestBasicAuth(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.BasicAuth.Enabled, o.BasicAuth.Username, o.BasicAuth.Password = true, "admin", "pw"
	})
	resp, _ := h.do("GET", "/api/v1/versions", "")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no credentials: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/v1/versions", nil)
	req.SetBasicAuth("admin", "pw")
	ok, err := h.srv.Client().Do(req)
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("with credentials: %v %v", ok, err)
	}
	ok.Body.Close()
	// Basic auth applies to /api/ only, not to signaling (SRS).
	if resp, _ := h.do("POST", "/rtc/v1/whip/", "v=0"); resp.StatusCode != 201 {
		t.Errorf("WHIP under Basic auth: %d", resp.StatusCode)
	}
	if h.api.Refusals()[401] != 1 {
		t.Errorf("refusals %v", h.api.Refusals())
	}
}
