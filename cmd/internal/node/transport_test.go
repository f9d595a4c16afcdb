package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// checkByteExact compares every access unit a player got against what
// the publisher sent, from the player's first matching unit on.
func checkByteExact(t *testing.T, pub *testPublisher, players ...*testPlayer) {
	t.Helper()
	sent := pub.sentAUs()
	for i, p := range players {
		// The callers' fixed 300 ms for the last packets to land was a
		// race with the player's own goroutines on a loaded machine: the
		// tail is waited for (≤ 3 s) before it is judged.
		got, opus := p.received()
		m := indexOf(sent, got)
		for deadline := time.Now().Add(3 * time.Second); (m == nil || len(got)-m.got < len(sent)-m.sent || opus == 0) &&
			time.Now().Before(deadline); m = indexOf(sent, got) {
			time.Sleep(20 * time.Millisecond)
			got, opus = p.received()
		}
		if m == nil || len(got)-m.got < len(sent)-m.sent || opus == 0 {
			t.Fatalf("player %d: %d access units, %d opus for %d sent", i, len(got), opus, len(sent))
		}
		for j := 0; j < len(sent)-m.sent; j++ {
			if got[m.got+j] != sent[m.sent+j] {
				t.Fatalf("player %d: access unit %d differs", i, m.sent+j)
			}
		}
		t.Logf("player %d: %d access units byte-exact, %d opus", i, len(sent)-m.sent, opus)
	}
}

// streamByteExact publishes the test media (h264, ogg) for d, lets the
// last packets land, and checks that every player got it byte-exact.
func streamByteExact(t *testing.T, d time.Duration, h264, ogg string, pub *testPublisher, players ...*testPlayer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	pub.stream(ctx, t, h264, ogg)
	time.Sleep(300 * time.Millisecond)
	checkByteExact(t, pub, players...)
}

// TestIPv6 publishes and plays over IPv6 with a dual-stack media socket.
// pion refuses ::1 as a candidate (it looks like a deprecated IPv4-compatible
// address to RFC 8445 §5.1.1.1 filters), so the test runs in a private
// network namespace whose loopback also carries a ULA, fd00:fa::1.
func TestIPv6(t *testing.T) {
	if !inPrivateNetns(t, "ip -6 addr add fd00:fa::1/128 dev lo") {
		return
	}
	h264, ogg := mediaFiles(t)
	cfg, err := conf.Parse("v6.conf", []byte(`
http_api { enabled on; listen 1985; }
rtc_server { enabled on; listen 8000; candidate fd00:fa::1; }
vhost __defaultVhost__ { rtc { enabled on; } }`), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "[fd00:fa::1]:0", RTCListen: "[::]:0", RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	api := fmt.Sprintf("http://[fd00:fa::1]:%d", srv.APIAddr().Port())
	q := "?app=live&stream=v6"
	pub := newTestPublisherOn(t, api+"/rtc/v1/whip/"+q, webrtc.NetworkTypeUDP6)
	if !strings.Contains(pub.res.Answer, fmt.Sprintf("udp 2130706431 fd00:fa::1 %d typ host", srv.fp.Port())) {
		t.Fatalf("no ::1 candidate:\n%s", pub.res.Answer)
	}
	player := newTestPlayerOn(t, api+"/rtc/v1/whep/"+q, webrtc.NetworkTypeUDP6)
	streamByteExact(t, 3*time.Second, h264, ogg, pub, player)
	for _, c := range srv.ctl.Clients() {
		if !strings.HasPrefix(c.Peer, "[fd00:fa::1]:") {
			t.Errorf("client %s peer %s is not IPv6", c.ID, c.Peer)
		}
	}
}

// TestHTTPS: with https enabled and no key/cert, WHIP works over a
// generated self-signed certificate.
func TestHTTPS(t *testing.T) {
	text := strings.Replace(testConfig, "http_api { enabled on; listen 1985; }",
		"http_api { enabled on; listen 1985; https { enabled on; listen 1990; } }", 1)
	cfg, err := conf.Parse("https.conf", []byte(text), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0",
		HTTPListen: "127.0.0.1:0", HTTPSAPIListen: "127.0.0.1:0", RTMPListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/rtc/v1/whip/?app=live&stream=tls", srv.apiTLS.Port())
	resp, err := client.Post(url, "application/sdp", strings.NewReader(curlOffer))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.TLS == nil || !strings.Contains(string(body), "a=ice-lite") {
		t.Fatalf("HTTPS WHIP: %d %s", resp.StatusCode, body)
	}
	if len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].Subject.CommonName != "fanout" {
		t.Errorf("not the generated certificate")
	}
}

// TestSRTPProfiles: both DTLS-SRTP profiles forward byte-exact; GCM is what
// Fanout picks by default on a CPU with AES and CLMUL.
func TestSRTPProfiles(t *testing.T) {
	h264, ogg := mediaFiles(t)
	for _, c := range []struct {
		preferCM bool
		want     string
	}{{false, "SRTP_AEAD_AES_128_GCM"}, {true, "SRTP_AES128_CM_HMAC_SHA1_80"}} {
		t.Run(c.want, func(t *testing.T) {
			// dtls_role passive: Fanout, the DTLS server, picks the profile
			// (as the client it would take the pion player's choice, GCM).
			passive := strings.Replace(testConfig, "stun_timeout 30;", "stun_timeout 30; dtls_role passive;", 1)
			cfg, err := conf.Parse("test.conf", []byte(passive), conf.Options{Env: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			srv, err := start(cfg, testLogger(), Options{APIListen: "127.0.0.1:0", RTCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", PreferCM: c.preferCM,
				RTMPListen: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			pub := newTestPublisher(t, srv, "app=live&stream=profile")
			player := newTestPlayer(t, srv, "app=live&stream=profile")
			streamByteExact(t, 2*time.Second, h264, ogg, pub, player)
			for _, cl := range srv.ctl.Clients() {
				if cl.SRTP != c.want {
					t.Errorf("client %s negotiated %q, want %q", cl.ID, cl.SRTP, c.want)
				}
			}
		})
	}
}
