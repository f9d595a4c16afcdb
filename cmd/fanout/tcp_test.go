package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	time.Sleep(300 * time.Millisecond)
	checkByteExact(t, pub, player)
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	time.Sleep(300 * time.Millisecond)
	checkByteExact(t, pub, player)
}
