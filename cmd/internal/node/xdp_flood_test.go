package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestXDPShieldPeers runs in A for TestXDPShield: a pion publisher and
// player, then a quiet window of media only and a flood window of media
// plus garbage and forged STUN from new source ports. It reports the
// server's CPU (its process, read from /proc: the namespaces share it),
// the fastpath's datagrams read and dropped, and the shield's verdicts,
// for each window.
func TestXDPShieldPeers(t *testing.T) {
	skipUnlessNetnsChild(t)
	api, ip := netnsEnv(t, "FANOUT_NETNS_API"), netip.MustParseAddr(netnsEnv(t, "FANOUT_NETNS_IP"))
	target := netip.MustParseAddrPort(netnsEnv(t, "FANOUT_NETNS_TARGET"))
	pid, _ := strconv.Atoi(netnsEnv(t, "FANOUT_NETNS_PID"))
	h264, ogg := gopMedia(t, 30, 8)
	pub := newQualityPublisher(t, qualityPeer(t, ip), api+"/rtc/v1/whip/?app=live&stream=shield")
	player := newRecPlayer(t, qualityPeer(t, ip), api+"/rtc/v1/whep/?app=live&stream=shield")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streamed := make(chan struct{})
	go func() { defer close(streamed); pub.stream(ctx, t, h264, ogg) }()

	time.Sleep(1500 * time.Millisecond)
	tids := fastpathThreads(t, api)
	s0 := takeShieldSample(t, api, pid, tids)
	time.Sleep(2 * time.Second)
	s1 := takeShieldSample(t, api, pid, tids)
	mediaPPS := (s1.rx - s0.rx) / s1.at.Sub(s0.at).Seconds()
	pps := max(20*mediaPPS, 10000)
	sent := flood(t, ip, target, pps, 2500*time.Millisecond)
	s2 := takeShieldSample(t, api, pid, tids)
	<-streamed
	time.Sleep(1500 * time.Millisecond) // the last repairs

	quiet, loud := s1.at.Sub(s0.at).Seconds(), s2.at.Sub(s1.at).Seconds()
	netnsResult("media_pps", mediaPPS)
	netnsResult("flood_pps", pps)
	netnsResult("flood_sent", sent)
	// What the flood added: the flood window's rate over the quiet one's.
	netnsResult("rx_extra", (s2.rx-s1.rx)-(s1.rx-s0.rx)*loud/quiet)
	netnsResult("cpu_extra", ((s2.cpu-s1.cpu)/loud-(s1.cpu-s0.cpu)/quiet)*1000)
	netnsResult("fp_cpu_extra", ((s2.fpCPU-s1.fpCPU)/loud-(s1.fpCPU-s0.fpCPU)/quiet)*1000)
	netnsResult("fp_drops", s2.drops-s1.drops)
	for _, v := range []string{"pass_session", "pass_stun", "drop_unknown", "drop_ratelimited", "pass_other"} {
		netnsResult("xdp_"+v, s2.xdp[v]-s1.xdp[v])
	}
	sentAUs := pub.sentAUs()
	pct := delivered(sentAUs, player.accessUnits())
	netnsResult("delivered", pct)
	t.Logf("%.2f %% of %d access units byte-exact through the flood", pct, len(sentAUs))
	if os.Getenv("FANOUT_XDP") == "on" && pct != 100 {
		t.Errorf("%.2f %% of %d access units byte-exact with the shield on, want all", pct, len(sentAUs))
	}
}

// shieldSample is the server's state at one instant.
type shieldSample struct {
	at        time.Time
	cpu       float64 // seconds of CPU the server process used
	fpCPU     float64 // of which the fastpath cores' threads
	rx, drops float64 // the fastpath's datagrams read and dropped
	xdp       map[string]float64
}

func takeShieldSample(t *testing.T, api string, pid int, tids []int) shieldSample {
	t.Helper()
	s := shieldSample{at: time.Now(), cpu: cpuSeconds(t, fmt.Sprintf("/proc/%d/stat", pid)), xdp: map[string]float64{}}
	for _, tid := range tids {
		s.fpCPU += cpuSeconds(t, fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	}
	for _, m := range scrapeLabelled(t, api) {
		switch m.name {
		case "fanout_fastpath_rx_packets_total":
			s.rx += m.value
		case "fanout_fastpath_drops_total":
			s.drops += m.value
		case "fanout_xdp_packets_total":
			s.xdp[m.label("verdict")] = m.value
		}
	}
	return s
}

// fastpathThreads are the OS threads of the server's fastpath cores, from
// /api/v1/summaries (fastpath.Stats.Thread).
func fastpathThreads(t *testing.T, api string) []int {
	t.Helper()
	resp, err := http.Get(api + "/api/v1/summaries")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tids []int
	for _, m := range regexp.MustCompile(`"Thread":(\d+)`).FindAllStringSubmatch(string(body), -1) {
		if n, _ := strconv.Atoi(m[1]); n > 0 {
			tids = append(tids, n)
		}
	}
	if len(tids) == 0 {
		t.Fatalf("no fastpath threads in the summaries: %.300s", body)
	}
	return tids
}

// cpuSeconds is the user+system CPU of a process or thread (its stat file
// under /proc), in seconds.
func cpuSeconds(t *testing.T, stat string) float64 {
	t.Helper()
	b, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	// "pid (comm) state ppid …": utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// flood sends pps datagrams a second to target for d from 64 sockets on
// ip (64 source ports that are no session): half garbage, half forged
// STUN Binding Requests naming no session. It returns how many it sent.
func flood(t *testing.T, ip netip.Addr, target netip.AddrPort, pps float64, d time.Duration) int {
	t.Helper()
	conns := make([]*net.UDPConn, 64)
	for i := range conns {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	garbage := make([]byte, 160)
	_, _ = rand.Read(garbage)
	garbage[0] = 0xff // not STUN, not DTLS, not RTP
	stun := make([]byte, 20, 48)
	binary.BigEndian.PutUint16(stun[0:], 0x0001)
	binary.BigEndian.PutUint32(stun[4:], 0x2112a442)
	_, _ = rand.Read(stun[8:20])
	stun = binary.BigEndian.AppendUint16(stun, 0x0006) // USERNAME
	stun = binary.BigEndian.AppendUint16(stun, 11)
	stun = append(append(stun, "zz00:forged"...), 0)
	binary.BigEndian.PutUint16(stun[2:], uint16(len(stun)-20))

	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	const senders = 2
	start := time.Now()
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, ok := 0, 0
			for tick := time.Millisecond; time.Since(start) < d; tick += time.Millisecond {
				due := int(pps / senders * (tick.Seconds()))
				for ; n < due; n++ {
					b := garbage
					if n%2 == 1 {
						b = stun
					}
					if _, err := conns[(n*senders+w)%len(conns)].WriteToUDPAddrPort(b, target); err == nil {
						ok++
					}
				}
				time.Sleep(time.Until(start.Add(tick)))
			}
			mu.Lock()
			total += ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total
}
