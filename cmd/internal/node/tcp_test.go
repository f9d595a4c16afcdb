package node

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// startTCPServer runs Fanout with WebRTC over TCP on a free port.
func startTCPServer(t *testing.T, protocol string) (*Server, int) {
	t.Helper()
	port := freePort(t, "tcp")
	text := strings.Replace(testConfig, "candidate 127.0.0.1; }",
		fmt.Sprintf("candidate 127.0.0.1; protocol %s; tcp { enabled on; listen %d; } }", protocol, port), 1)
	cfg, err := conf.Parse("tcp.conf", []byte(text), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		TCPListen: fmt.Sprintf("127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, port
}

// TestTCPOnly: with `protocol tcp`, a pion publisher and player restricted
// to TCP publish and play byte-exact over RFC 4571 framing.
func TestTCPOnly(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv, port := startTCPServer(t, "tcp")
	q := "?app=live&stream=tcp"
	pub := newTestPublisherOn(t, srv.url("/rtc/v1/whip/"+q), webrtc.NetworkTypeTCP4)
	if want := fmt.Sprintf("tcp 2130706431 127.0.0.1 %d typ host tcptype passive", port); !strings.Contains(pub.res.Answer, want) ||
		strings.Contains(pub.res.Answer, " udp ") {
		t.Fatalf("answer candidates are not TCP only:\n%s", pub.res.Answer)
	}
	player := newTestPlayerOn(t, srv.url("/rtc/v1/whep/"+q), webrtc.NetworkTypeTCP4)
	streamByteExact(t, 3*time.Second, h264, ogg, pub, player)
	for _, c := range srv.ctl.Clients() {
		if !strings.HasSuffix(strings.Split(c.Peer, "]")[0], "%tcp") {
			t.Errorf("client %s is on %s, not TCP", c.ID, c.Peer)
		}
	}
	st := srv.tcpSrv.Stats()
	if st.FramesIn == 0 || st.FramesOut == 0 {
		t.Errorf("tcp stats %+v", st)
	}
}

// TestOnePort: WHIP, a page and WebRTC over TCP on one TCP port, with the
// HTTP server and the API sharing it too (spec: "可以全部复用一个TCP端口").
func TestOnePort(t *testing.T) {
	h264, ogg := mediaFiles(t)
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	text := strings.Replace(testConfig, "candidate 127.0.0.1; }",
		fmt.Sprintf("candidate 127.0.0.1; protocol tcp; tcp { enabled on; listen %d; } }", port), 1)
	cfg, err := conf.Parse("oneport.conf", []byte(text), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: addr, HTTPListen: addr, TCPListen: addr, RTCListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + addr
	q := "?app=live&stream=oneport"
	pub := newTestPublisherOn(t, base+"/rtc/v1/whip/"+q, webrtc.NetworkTypeTCP4)
	if !strings.Contains(pub.res.Answer, fmt.Sprintf("127.0.0.1 %d typ host tcptype passive", port)) {
		t.Fatalf("TCP candidate is not the shared port:\n%s", pub.res.Answer)
	}
	code, _, page := httpDo(t, "GET", base+"/players/whep.html", nil, "")
	if code != 200 || !strings.Contains(page, "<html") {
		t.Fatalf("page GET on the shared port: %d", code)
	}
	player := newTestPlayerOn(t, base+"/rtc/v1/whep/"+q, webrtc.NetworkTypeTCP4)
	streamByteExact(t, 2*time.Second, h264, ogg, pub, player)
}

// TestChromiumOverTCP: in a network namespace whose UDP is dropped
// (nftables), headless Chromium publishes and plays over WebRTC-over-TCP.
func TestChromiumOverTCP(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("chromium not installed (make deps installs it)")
	}
	if !inPrivateNetns(t, "nft add table inet noudp",
		"nft add chain inet noudp out '{ type filter hook output priority 0; }'",
		"nft add rule inet noudp out meta l4proto udp drop") {
		return
	}
	srv, _ := startTCPServer(t, "all")
	p := runChromiumOn(t, srv, "", "H264")
	for name, pair := range map[string]string{"publisher": p.Pub.Pair, "player": p.Play.Pair} {
		if !strings.Contains(pair, " tcp ") || strings.Contains(pair, " udp ") {
			t.Errorf("%s's selected pair is not TCP: %s", name, pair)
		}
	}
	if st := srv.tcpSrv.Stats(); st.FramesIn == 0 || st.FramesOut == 0 {
		t.Errorf("no frames on the TCP transport: %+v", st)
	}
}

// TestTCPBadFraming: a first frame that is not STUN, an oversized length
// and a STUN frame naming no session each close only their connection,
// and /metrics says why; a session on another connection is unaffected.
func TestTCPBadFraming(t *testing.T) {
	srv, port := startTCPServer(t, "tcp")
	good := newTestPlayerOn(t, srv.url("/rtc/v1/whep/?app=live&stream=framing"), webrtc.NetworkTypeTCP4)
	stunFor := func(user string) []byte {
		m, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(user),
			stun.NewShortTermIntegrity("0123456789012345678901"), stun.Fingerprint)
		return append([]byte{byte(len(m.Raw) >> 8), byte(len(m.Raw))}, m.Raw...)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"not stun first", append([]byte{0, 13}, make([]byte, 13)...)},
		{"length over 1500", []byte{0x05, 0xdd}},
		{"unknown session", stunFor("nosuchufrag:x")},
	} {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(c.data)
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Read(make([]byte, 64)); err == nil {
			t.Errorf("%s: connection got data instead of being closed", c.name)
		}
		conn.Close()
	}
	m := scrape(t, srv)
	for _, reason := range []string{"not_binding_request", "bad_length", "unknown_session"} {
		if m[`fanout_tcp_closes_total{reason="`+reason+`"}`] < 1 {
			t.Errorf("no close counted for %s: %v", reason, m)
		}
	}
	if good.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		t.Errorf("the good TCP session dropped: %v", good.pc.ConnectionState())
	}
}
