package node

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// testConfig is rtc.conf's meaning with everything on loopback.
const testConfig = `
listen 1935;
daemon off;
http_api { enabled on; listen 1985; }
http_server { enabled on; listen 8080; dir ./objs/nginx/html; }
rtc_server { enabled on; listen 8000; candidate 127.0.0.1; }
vhost __defaultVhost__ { rtc { enabled on; stun_timeout 30; } }
`

// start is Start; the tests' short name for it.
func start(cfg *conf.Config, log *slog.Logger, o Options) (*Server, error) { return Start(cfg, log, o) }

// startTestServer runs a Fanout on free loopback ports.
func startTestServer(t testing.TB, extra string) *Server {
	t.Helper()
	return startTestServerConfig(t, testConfig+extra)
}

// startTestServerConfig runs a Fanout on a whole config text; listen
// addresses are replaced by free loopback ports.
func startTestServerConfig(t testing.TB, text string) *Server {
	t.Helper()
	cfg, err := conf.Parse("test.conf", []byte(text), conf.Options{Env: []string{}, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// testLogger shows warnings, or everything with FANOUT_TEST_LOG=1.
func testLogger() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("FANOUT_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func (s *Server) url(path string) string {
	return fmt.Sprintf("http://%s%s", s.APIAddr(), path)
}

// newPeer is a pion PeerConnection restricted to IPv4 loopback.
func newPeer(t testing.TB) *webrtc.PeerConnection {
	t.Helper()
	return newPeerOn(t, webrtc.NetworkTypeUDP4)
}

// newPeerOn is a pion PeerConnection on one loopback network type.
func newPeerOn(t testing.TB, nt webrtc.NetworkType) *webrtc.PeerConnection {
	t.Helper()
	return newPeerWith(t, peerOptions{network: nt})
}

// peerOptions are how a test's pion PeerConnection differs from newPeer's
// (IPv4 UDP on loopback, no mDNS, pion's default codecs and interceptors).
type peerOptions struct {
	network webrtc.NetworkType // zero: UDP4
	// ip, when valid, is the one address to gather on (a namespace's veth
	// address) instead of loopback.
	ip netip.Addr
	// settings adjusts the setting engine (ICE timeouts, replay window…).
	settings func(*webrtc.SettingEngine)
	// media registers more with the media engine after the default codecs
	// (header extensions).
	media func(*webrtc.MediaEngine) error
	// interceptors, when set, replaces pion's default interceptors.
	interceptors func(*webrtc.MediaEngine, *interceptor.Registry) error
}

// newPeerWith is a pion PeerConnection built as o says; the caller closes it.
func newPeerWith(t testing.TB, o peerOptions) *webrtc.PeerConnection {
	t.Helper()
	nt := o.network
	if nt == webrtc.NetworkTypeUnknown {
		nt = webrtc.NetworkTypeUDP4
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{nt})
	if o.ip.IsValid() {
		se.SetIPFilter(func(a net.IP) bool { return a.Equal(net.IP(o.ip.AsSlice())) })
	} else {
		se.SetIncludeLoopbackCandidate(true)
		// Loopback only; over IPv6 also the ULA of TestIPv6's private
		// namespace (pion refuses ::1, see there).
		v6 := nt == webrtc.NetworkTypeUDP6 || nt == webrtc.NetworkTypeTCP6
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() || v6 && ip.IsPrivate() })
	}
	if o.settings != nil {
		o.settings(&se)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if o.media != nil {
		if err := o.media(m); err != nil {
			t.Fatal(err)
		}
	}
	opts := []func(*webrtc.API){webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m)}
	if o.interceptors != nil {
		ir := &interceptor.Registry{}
		if err := o.interceptors(m, ir); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, webrtc.WithInterceptorRegistry(ir))
	}
	pc, err := webrtc.NewAPI(opts...).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// whipResult is what a 201 carried.
type whipResult struct {
	Location, ETag string
	Answer         string
}

// exchange runs the non-trickle offer/answer exchange against url.
func exchange(t testing.TB, pc *webrtc.PeerConnection, url string) whipResult {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	status, hdr, body := post(t, url, "application/sdp", pc.LocalDescription().SDP)
	if status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, status, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatalf("answer rejected: %v\n%s", err, body)
	}
	return whipResult{Location: hdr.Get("Location"), ETag: hdr.Get("ETag"), Answer: body}
}

func post(t testing.TB, url, ctype, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func httpDo(t testing.TB, method, url string, hdr map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func waitConnected(t testing.TB, pc *webrtc.PeerConnection, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatalf("peer not connected after %v: %v", d, pc.ConnectionState())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mediaFiles makes H.264 (Annex B, baseline, no B-frames) and Opus (Ogg)
// test media with ffmpeg once per test binary.
var mediaOnce struct {
	sync.Once
	dir string
	err error
}

func mediaFiles(t testing.TB) (h264, ogg string) {
	t.Helper()
	mediaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fanout-media-")
		if err != nil {
			mediaOnce.err = err
			return
		}
		mediaOnce.dir = dir
		run := func(args ...string) error {
			cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("ffmpeg %v: %v: %s", args, err, stderr.String())
			}
			return nil
		}
		mediaOnce.err = run("-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "6",
			"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-bf", "0", "-g", "30",
			"-pix_fmt", "yuv420p", "-x264-params", "slices=1", "-f", "h264", filepath.Join(dir, "v.h264"))
		if mediaOnce.err == nil {
			mediaOnce.err = run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6",
				"-c:a", "libopus", "-b:a", "48k", "-page_duration", "20000", "-f", "ogg", filepath.Join(dir, "a.ogg"))
		}
	})
	if mediaOnce.err != nil {
		t.Fatal(mediaOnce.err)
	}
	return filepath.Join(mediaOnce.dir, "v.h264"), filepath.Join(mediaOnce.dir, "a.ogg")
}

// netnsChildTests are the halves of netns tests that run only inside a
// namespace, re-executed by their parent test (netns_test.go). A normal run
// leaves them out with -test.skip instead of reporting them as skipped.
var netnsChildTests = []string{"TestNetnsFanoutServer", "TestNetnsUDPEchoChild", "TestNetnsUDPClientChild",
	"TestNetnsPublishChild", "TestQualityChromiumPeer", "TestQualityLossPeers", "TestXDPShieldPeers",
	"TestClientsPionPlayerChild", "TestQualityJoinLossPeers"}

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(netnsChildEnv) == "" {
		skip := "^(" + strings.Join(netnsChildTests, "|") + ")$"
		if prev := flag.Lookup("test.skip").Value.String(); prev != "" {
			skip = prev + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
	}
	code := m.Run()
	if mediaOnce.dir != "" {
		os.RemoveAll(mediaOnce.dir)
	}
	os.Exit(code)
}

func addRecvonly(t testing.TB, pc *webrtc.PeerConnection) {
	t.Helper()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
}

// localOffer sets a local offer; the returned func reads the SDP once
// gathering is complete.
func localOffer(t testing.TB, pc *webrtc.PeerConnection) (func() string, <-chan struct{}) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return func() string { return pc.LocalDescription().SDP }, gathered
}

func setAnswer(t testing.TB, pc *webrtc.PeerConnection, sdp string) {
	t.Helper()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}
