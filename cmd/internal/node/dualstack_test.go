package node

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/conf"
)

// requireIPv6Loopback skips where the host has no ::1 (CI has it).
func requireIPv6Loopback(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback (::1) on this host: %v", err)
	}
	ln.Close()
}

// TestListenersDualStack: with every listen directive a port alone, each
// listener Fanout opens (WebRTC UDP and TCP, HTTP API, HTTP server, both
// HTTPS, RTMP) accepts on 127.0.0.1 and on ::1, as SRS's do.
func TestListenersDualStack(t *testing.T) {
	requireIPv6Loopback(t)
	tcpPorts := map[string]int{}
	for _, name := range []string{"rtmp", "api", "https api", "http", "https", "webrtc tcp"} {
		tcpPorts[name] = freePort(t, "tcp")
	}
	udp := freePort(t, "udp")
	cfg, err := conf.Parse("dualstack.conf", []byte(fmt.Sprintf(`
listen %d;
http_api { enabled on; listen %d; https { enabled on; listen %d; } }
http_server { enabled on; listen %d; https { enabled on; listen %d; } }
rtc_server { enabled on; listen %d; tcp { enabled on; listen %d; } protocol all; candidate 127.0.0.1; }
vhost __defaultVhost__ { rtc { enabled on; } }`, tcpPorts["rtmp"], tcpPorts["api"], tcpPorts["https api"],
		tcpPorts["http"], tcpPorts["https"], udp, tcpPorts["webrtc tcp"])), conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, host := range []string{"127.0.0.1", "::1"} {
		for name, port := range tcpPorts {
			addr := net.JoinHostPort(host, fmt.Sprint(port))
			switch name {
			case "api":
				if code, _, _ := httpDo(t, http.MethodGet, "http://"+addr+"/healthz", nil, ""); code != http.StatusOK {
					t.Errorf("%s on %s: GET /healthz %d", name, addr, code)
				}
			case "http":
				if code, _, _ := httpDo(t, http.MethodGet, "http://"+addr+"/players/whep.html", nil, ""); code != http.StatusOK {
					t.Errorf("%s on %s: GET a page %d", name, addr, code)
				}
			case "https api", "https":
				resp, err := tlsClient.Get("https://" + addr + "/players/")
				if err != nil {
					t.Errorf("%s on %s: %v", name, addr, err)
					continue
				}
				resp.Body.Close()
			default: // rtmp, webrtc tcp: the connection is accepted
				c, err := net.DialTimeout("tcp", addr, 3*time.Second)
				if err != nil {
					t.Errorf("%s on %s: %v", name, addr, err)
					continue
				}
				c.Close()
			}
		}
	}
	// UDP: the spec's curl + nc check from each family to the one session.
	if code, _, body := post(t, srv.url(curlQuery+"dualstack"), "application/sdp", curlOffer); code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		if err := stunCheck(net.JoinHostPort(host, fmt.Sprint(udp))); err != nil {
			t.Errorf("webrtc udp on %s: %v", host, err)
		}
	}
}

// stunCheck sends the curl check's Binding Request to addr and wants a
// Binding Success back.
func stunCheck(addr string) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(curlSTUN)); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return fmt.Errorf("no STUN answer: %w", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil || m.Type != stun.BindingSuccess || !bytes.Equal(buf[8:20], []byte(curlSTUN)[8:20]) {
		return fmt.Errorf("not our binding success: %v %v", err, m)
	}
	return nil
}

// The shipped WebRTC-over-TCP configs run as they are: read from conf/,
// unmodified, with $CANDIDATE unset, on their own ports (1935, 1985, 8080,
// 8000), in a private network namespace whose loopback also carries the
// ULA fd00:fa::1 (pion refuses ::1 as a candidate, see TestIPv6).
func TestShippedTCPOnlyConf(t *testing.T) { testShippedTCPConf(t, "rtc.tcp.only.conf") }

// TestShippedTCPUDPConf is TestShippedTCPOnlyConf for protocol all; a UDP
// player joins too.
func TestShippedTCPUDPConf(t *testing.T) { testShippedTCPConf(t, "rtc.tcp.udp.conf") }

// testShippedTCPConf: an IPv4 TCP-only pion publisher and player exchange
// media byte-exact (the candidate is 127.0.0.1, auto-detected: the
// namespace has no other IPv4 address), and an IPv6 TCP-only player on
// the same server plays it too, through a candidate of its API host.
func testShippedTCPConf(t *testing.T, file string) {
	if !inPrivateNetns(t, "ip -6 addr add fd00:fa::1/128 dev lo") {
		return
	}
	h264, ogg := mediaFiles(t)
	cfg, err := conf.Load("../../../conf/"+file, conf.Options{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, testLogger(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	q := "?app=live&stream=shipped"
	v4 := "http://127.0.0.1:1985/rtc/v1/"
	pub := newTestPublisherOn(t, v4+"whip/"+q, webrtc.NetworkTypeTCP4)
	if !strings.Contains(pub.res.Answer, "tcp 2130706431 127.0.0.1 8000 typ host tcptype passive") {
		t.Fatalf("answer lacks the TCP candidate 127.0.0.1:8000:\n%s", pub.res.Answer)
	}
	if udp := strings.Contains(pub.res.Answer, " udp "); udp != (file == "rtc.tcp.udp.conf") {
		t.Errorf("UDP candidates offered: %v, want them only with protocol all:\n%s", udp, pub.res.Answer)
	}
	players := []*testPlayer{newTestPlayerOn(t, v4+"whep/"+q, webrtc.NetworkTypeTCP4)}
	v6 := newTestPlayerOn(t, "http://[fd00:fa::1]:1985/rtc/v1/whep/"+q, webrtc.NetworkTypeTCP6)
	if !strings.Contains(v6.res.Answer, "tcp 2130706431 fd00:fa::1 8000 typ host") {
		t.Fatalf("IPv6 answer lacks fd00:fa::1:8000:\n%s", v6.res.Answer)
	}
	players = append(players, v6)
	if file == "rtc.tcp.udp.conf" {
		players = append(players, newTestPlayerOn(t, v4+"whep/"+q, webrtc.NetworkTypeUDP4))
	}
	streamByteExact(t, 3*time.Second, h264, ogg, pub, players...)
	var tcp4, tcp6 int
	for _, c := range srv.ctl.Clients() {
		switch {
		case strings.HasPrefix(c.Peer, "[127.0.0.1%tcp]"), strings.HasPrefix(c.Peer, "[::ffff:127.0.0.1%tcp]"):
			tcp4++
		case strings.HasPrefix(c.Peer, "[fd00:fa::1%tcp]"):
			tcp6++
		}
	}
	if tcp4 != 2 || tcp6 != 1 {
		t.Errorf("TCP clients: %d over IPv4 (want publisher and player), %d over IPv6 (want 1): %+v", tcp4, tcp6, srv.ctl.Clients())
	}
	for _, a := range []string{"127.0.0.1:8000", "[::1]:8000", "[::1]:1985"} {
		c, err := net.DialTimeout("tcp", a, 3*time.Second)
		if err != nil {
			t.Errorf("connect %s: %v", a, err)
			continue
		}
		c.Close()
	}
}
