package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// curlOffer is the offer of the spec's "Connection Failures" curl check.
const curlOffer = "v=0\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=msid:- audio\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=ssrc:3184534672 cname:stream\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\na=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=msid:- video\r\na=rtcp-mux\r\na=rtpmap:106 H264/90000\r\na=ssrc:512761356 cname:stream"

// curlSTUN is the Binding Request of the spec's nc check (USERNAME
// 6pk11386:J8X7, MESSAGE-INTEGRITY keyed with the forced ice-pwd).
const curlSTUN = "\x00\x01\x00\x50\x21\x12\xa4\x42\x74\x79\x6d\x7a\x41\x51\x2b\x2f\x4a\x4b\x77\x52\x00\x06\x00\x0d\x36\x70\x6b\x31\x31\x33\x38\x36\x3a\x4a\x38\x58\x37\x00\x00\x00\xc0\x57\x00\x04\x00\x01\x00\x0a\x80\x2a\x00\x08\xda\xad\x1d\xce\xe8\x95\x5a\x83\x00\x24\x00\x04\x6e\x7f\x1e\xff\x00\x08\x00\x14\x56\x8f\x1e\x1e\x4f\x5f\x17\xf9\x2e\xa1\xec\xbd\x51\xd9\xa2\x27\xe4\xfd\xda\xb1\x80\x28\x00\x04\x84\xd3\x5a\x79"

const curlQuery = "/rtc/v1/whip/?ice-ufrag=6pk11386&ice-pwd=l91z529147ri9163933p51c4&app=live&stream=livestream-"

// TestConnectivityCheck runs the spec's curl + nc check: the POST gets 201
// with a 127.0.0.1 candidate, and the STUN packet gets a Binding Success
// that Fanout signed with the forced password.
func TestConnectivityCheck(t *testing.T) {
	srv := startTestServer(t, "")
	code, hdr, body := httpDo(t, http.MethodPost, srv.url(curlQuery+fmt.Sprint(time.Now().Unix())), map[string]string{
		"Origin": "http://localhost", "Referer": "http://localhost", "Accept": "*/*",
		"Content-type": "application/sdp", "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
	}, curlOffer)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	if want := fmt.Sprintf("a=candidate:0 1 udp 2130706431 127.0.0.1 %d typ host generation 0", srv.fp.Port()); !strings.Contains(body, want) {
		t.Fatalf("answer lacks %q:\n%s", want, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(hdr.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("CORS headers missing: %v", hdr)
	}

	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", srv.fp.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(curlSTUN)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no STUN answer: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess {
		t.Fatalf("not a binding success: %v %v", err, m)
	}
	if err := stun.NewShortTermIntegrity("l91z529147ri9163933p51c4").Check(m); err != nil {
		t.Errorf("MESSAGE-INTEGRITY: %v", err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Errorf("FINGERPRINT: %v", err)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err != nil || xor.Port != conn.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want our port", xor, err)
	}
	if !bytes.Equal(buf[8:20], []byte(curlSTUN)[8:20]) {
		t.Errorf("transaction id not echoed")
	}
}

// TestConnectivityCheckShell runs the spec's exact shell pipeline.
func TestConnectivityCheckShell(t *testing.T) {
	for _, tool := range []string{"curl", "nc", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs it)", tool)
		}
	}
	srv := startTestServer(t, "")
	api := srv.APIAddr()
	script := fmt.Sprintf(`curl -s -o /dev/null -w '%%{http_code}' "http://127.0.0.1:%d%s$(date +%%s)" -H 'Origin: http://localhost' -H 'Content-type: application/sdp' --data-raw $'%s' &&
echo -en "%s" | nc -w 3 -u 127.0.0.1 %d | od -Ax -c -t x1 | grep '000' && echo "Success" || echo "Failed"`,
		api.Port(), curlQuery, strings.ReplaceAll(curlOffer, "\r\n", `\r\n`), escapeBytes(curlSTUN), srv.fp.Port())
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if !strings.HasPrefix(s, "201") || !strings.Contains(s, "Success") || !strings.Contains(s, "6   p   k   1   1   3   8   6") {
		t.Fatalf("check failed:\n%s", s)
	}
}

func escapeBytes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\x%02x`, s[i])
	}
	return b.String()
}

// TestErrorStatuses pins one status per failure, each with a one-line
// text/plain reason (RFC 9725 §4.2).
func TestErrorStatuses(t *testing.T) {
	srv := startTestServer(t, "")
	noBundle := strings.Replace(curlOffer, "a=group:BUNDLE 0 1\r\n", "", 1)
	noMux := strings.ReplaceAll(curlOffer, "a=rtcp-mux\r\n", "")
	dataOnly := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n"
	pub := "/rtc/v1/whip/?app=live&stream=statuses"
	// A live publisher for the 409 case.
	if code, _, body := post(t, srv.url(pub), "application/sdp", curlOffer); code != http.StatusCreated {
		t.Fatalf("first publish: %d %s", code, body)
	}
	cases := []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"malformed sdp", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/sdp", "this is not sdp", 400},
		{"empty body", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/sdp", "", 400},
		{"wrong content type", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/json", curlOffer, 415},
		{"no bundle", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/sdp", noBundle, 422},
		{"no rtcp-mux", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/sdp", noMux, 422},
		{"no audio or video", "POST", "/rtc/v1/whip/?app=live&stream=a", "application/sdp", dataOnly, 422},
		{"second publisher", "POST", pub, "application/sdp", curlOffer, 409},
		{"player offers sendonly", "POST", "/rtc/v1/whep/?app=live&stream=a", "application/sdp", curlOffer, 422},
		{"GET", "GET", "/rtc/v1/whip/?app=live&stream=a", "", "", 405},
		{"PUT", "PUT", "/rtc/v1/whep/?app=live&stream=a", "application/sdp", curlOffer, 405},
		{"short ice-ufrag", "POST", "/rtc/v1/whip/?app=live&stream=b&ice-ufrag=ab", "application/sdp", curlOffer, 400},
		{"unknown session delete", "DELETE", "/rtc/v1/whip/?action=delete&session=nope:x&token=t", "", "", 404},
		{"legacy bad json", "POST", "/rtc/v1/publish/", "application/json", "{", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.ctype != "" {
				hdr["Content-Type"] = c.ctype
			}
			code, h, body := httpDo(t, c.method, srv.url(c.path), hdr, c.body)
			if code != c.want {
				t.Fatalf("%s %s: %d %q, want %d", c.method, c.path, code, body, c.want)
			}
			if !strings.HasPrefix(c.path, "/rtc/v1/publish/") {
				if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("content type %q", ct)
				}
				if lines := strings.Count(strings.TrimSpace(body), "\n"); body == "" || lines > 0 {
					t.Errorf("reason %q is not one line", body)
				}
			}
		})
	}
	// Every refusal above is counted by status on /metrics (issue 14 item 6).
	want := map[int]float64{}
	for _, c := range cases {
		want[c.want]++
	}
	got := scrape(t, srv)
	for status, n := range want {
		key := fmt.Sprintf(`fanout_http_refusals_total{status="%d"}`, status)
		if got[key] < n {
			t.Errorf("%s = %v, want ≥ %v", key, got[key], n)
		}
	}
}

// TestOptionsAndDelete covers CORS preflight and the session lifecycle
// through Location, ETag and PATCH.
func TestOptionsAndDelete(t *testing.T) {
	srv := startTestServer(t, "")
	code, h, _ := httpDo(t, http.MethodOptions, srv.url("/rtc/v1/whip/"), map[string]string{"Origin": "http://x"}, "")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Accept-Post") != "application/sdp" {
		t.Fatalf("OPTIONS: %d %v", code, h)
	}
	code, h, body := post(t, srv.url("/rtc/v1/whip/?app=live&stream=lifecycle"), "application/sdp", curlOffer)
	if code != 201 {
		t.Fatalf("POST: %d %s", code, body)
	}
	loc, etag := h.Get("Location"), h.Get("ETag")
	if !strings.HasPrefix(loc, "/") || etag == "" {
		t.Fatalf("Location %q ETag %q", loc, etag)
	}
	frag := "a=ice-ufrag:J8X7\r\na=ice-pwd:Dpq7/fW/osYcPeLsCW2Ek1JH\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
	for _, c := range []struct {
		ifMatch string
		want    int
	}{{"", 428}, {`"stale"`, 412}, {"*", 422}, {etag, 204}} {
		hdr := map[string]string{"Content-Type": "application/trickle-ice-sdpfrag"}
		if c.ifMatch != "" {
			hdr["If-Match"] = c.ifMatch
		}
		if code, _, body := httpDo(t, http.MethodPatch, srv.url(loc), hdr, frag); code != c.want {
			t.Errorf("PATCH If-Match %q: %d %s, want %d", c.ifMatch, code, body, c.want)
		}
	}
	bad := strings.Replace(loc, "token=", "token=x", 1)
	if code, _, _ := httpDo(t, http.MethodDelete, srv.url(bad), nil, ""); code != http.StatusForbidden {
		t.Errorf("DELETE with a wrong token: %d", code)
	}
	if code, h, _ := httpDo(t, http.MethodDelete, srv.url(loc), nil, ""); code != 200 || h.Get("Content-Length") != "0" {
		t.Errorf("DELETE: %d", code)
	}
	waitSessions(t, srv, 0)
	if code, _, _ := httpDo(t, http.MethodDelete, srv.url(loc), nil, ""); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d", code)
	}
}

// TestLegacyAPI plays through SRS's JSON API (srs.sdk.js, srs-bench).
func TestLegacyAPI(t *testing.T) {
	srv := startTestServer(t, "")
	pc := newPeer(t)
	defer pc.Close()
	addRecvonly(t, pc)
	offer, gathered := localOffer(t, pc)
	<-gathered
	req, _ := json.Marshal(map[string]string{
		"api": srv.url("/rtc/v1/play/"), "streamurl": "webrtc://127.0.0.1/live/legacy", "sdp": offer(), "tid": "x",
	})
	code, _, body := post(t, srv.url("/rtc/v1/play/"), "application/json", string(req))
	if code != 200 {
		t.Fatalf("legacy play: %d %s", code, body)
	}
	var res struct {
		Code      int    `json:"code"`
		SDP       string `json:"sdp"`
		SessionID string `json:"sessionid"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Code != 0 || !strings.Contains(res.SDP, "a=ice-lite") || !strings.Contains(res.SessionID, ":") {
		t.Fatalf("legacy answer: %v %+v", err, res)
	}
	setAnswer(t, pc, res.SDP)
	waitConnected(t, pc, 5*time.Second)
}

// TestAPIVersionsSRSTools: SRS's tools call /api/v1/versions with GET and
// POST (issue 14 item 3); both answer 200 with SRS's envelope, and
// /api/v1/summaries has SRS's data.self / data.system layout.
func TestAPIVersionsSRSTools(t *testing.T) {
	srv := startTestServer(t, "")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		code, _, body := httpDo(t, method, srv.url("/api/v1/versions"), nil, "")
		var v struct {
			Code int `json:"code"`
			Data struct {
				Major   *int   `json:"major"`
				Version string `json:"version"`
			} `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Code != 0 ||
			v.Data.Major == nil || v.Data.Version == "" {
			t.Errorf("%s /api/v1/versions: %d %s", method, code, body)
		}
	}
	var sum struct {
		Code int `json:"code"`
		Data struct {
			OK     bool           `json:"ok"`
			Self   map[string]any `json:"self"`
			System map[string]any `json:"system"`
			Fanout map[string]any `json:"fanout"`
		} `json:"data"`
	}
	if code := getJSON(t, srv.url("/api/v1/summaries"), &sum); code != http.StatusOK || sum.Code != 0 ||
		!sum.Data.OK || sum.Data.Self["pid"] == nil || sum.Data.System["cpus"] == nil || sum.Data.Fanout == nil {
		t.Errorf("summaries: %d %+v", code, sum)
	}
}
