package node

import (
	"context"
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestSimulcastAuto: a pion player without a pinned layer sits behind a
// UDP relay whose server→player direction is rate-limited so that only
// layer l fits: it is moved down to l, and back up to h once the limit is
// lifted; every move lands on a keyframe and the stream stays continuous.
// Twice: a player whose RR interceptor reports loss every second and that
// negotiates no transport-cc (the RR-loss path, layerauto.go), and one with
// pion's default interceptors, whose transport-wide feedback feeds its
// bandwidth estimate (fastpath/bwe, playerbwe.go).
func TestSimulcastAuto(t *testing.T) {
	for _, tc := range []struct {
		name string
		twcc bool
	}{{"rr", false}, {"twcc", true}} {
		t.Run(tc.name, func(t *testing.T) { testSimulcastAuto(t, tc.twcc) })
	}
}

func testSimulcastAuto(t *testing.T, twcc bool) {
	srv := startTestServer(t, "")
	q := "app=live&stream=sim-auto"
	pub := newSimPublisher(t, srv, q+"&codec=vp8")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.stream(ctx, t); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)

	relay := newRateRelay(t)
	p := newRelayedPlayer(t, srv, relay, q, twcc)
	waitLayer(t, p, 0, 5*time.Second)
	// Layer l is about 4.2 KB/s with headers, m 14 KB/s, h 30 KB/s.
	relay.limit.Store(6000)
	t0 := time.Now()
	down := waitLayer(t, p, 2, 8*time.Second)
	tDown := down.Sub(t0)
	time.Sleep(1500 * time.Millisecond)
	relay.limit.Store(0)
	t1 := time.Now()
	up := waitLayer(t, p, 0, 20*time.Second)
	tUp := up.Sub(t1)
	if est := playerEstimate(t, srv); (est > 0) != twcc {
		t.Errorf("the player's estimate is %d bps with transport-cc %v", est, twcc)
	}
	cancel()
	<-done

	pkts := p.received()
	runs, layers := layerRuns(pkts)
	for i, run := range runs[1:] {
		// The relay may drop the keyframe itself: the frames of the
		// sequence numbers missing before the first packet received count.
		prev, l := runs[i][len(runs[i])-1], layers[i+1]
		gap := int(run[0].SequenceNumber - prev.SequenceNumber - 1)
		if !pub.keyWithin(l, run[0].Payload, gap) {
			t.Errorf("move %d to layer %s: no keyframe among frames %d back from seq %d", i+1, simRIDs[l], gap, run[0].SequenceNumber)
		}
	}
	checkSwitches(t, runs)
	if tDown > 4*time.Second {
		t.Errorf("moved down to l %v after the limit, want within 4 s", tDown)
	}
	if tUp > 15*time.Second {
		t.Errorf("moved back up to h %v after the limit was lifted, want within 15 s", tUp)
	}
	t.Logf("limit on → layer l after %v; limit off → layer h after %v; layers in order %v; relay dropped %d datagrams",
		tDown.Round(10*time.Millisecond), tUp.Round(10*time.Millisecond), layerNames(layers), relay.dropped.Load())
}

// checkSwitches checks each layer move of a lossy player: the first packet
// of the new layer follows the last of the old one, a few sequence
// numbers on (the relay drops some), with no timestamp going back.
func checkSwitches(t *testing.T, runs [][]rtp.Packet) {
	t.Helper()
	for i := 1; i < len(runs); i++ {
		a, b := runs[i-1][len(runs[i-1])-1], runs[i][0]
		if d := int16(b.SequenceNumber - a.SequenceNumber); b.SSRC != a.SSRC || d <= 0 || d > 100 || int32(b.Timestamp-a.Timestamp) < 0 {
			t.Errorf("move %d: SSRC %x→%x seq %d→%d ts %d→%d", i, a.SSRC, b.SSRC, a.SequenceNumber, b.SequenceNumber,
				a.Timestamp, b.Timestamp)
		}
	}
}

// keyWithin reports whether layer l sent a key frame among the frame of
// payload and the back frames before it.
func (p *simPublisher) keyWithin(l int, payload []byte, back int) bool {
	f := binary.BigEndian.Uint32(payload[3:])
	for _, s := range p.sentLayer(l) {
		if sf := binary.BigEndian.Uint32(s[3:]); s[7] == 0 && sf <= f && f-sf <= uint32(back) && isKeyStart(s) {
			return true
		}
	}
	return false
}

func layerNames(ls []int) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = simRIDs[l]
	}
	return out
}

// waitLayer waits until the player's last packet is of layer l and returns when.
func waitLayer(t *testing.T, p *rtpPlayer, l int, d time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p.mu.Lock()
		n := len(p.pkts)
		on := n > 0 && int(p.pkts[n-1].Payload[2]) == l
		p.mu.Unlock()
		if on {
			return time.Now()
		}
		if time.Now().After(deadline) {
			_, layers := layerRuns(p.received())
			t.Fatalf("player not on layer %s after %v (runs %v)", simRIDs[l], d, layerNames(layers))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rateRelay forwards UDP between a player (front) and the server (back);
// limit > 0 caps the server→player direction at limit bytes a second with
// a 100 ms bucket, dropping the excess like a full bottleneck queue.
type rateRelay struct {
	front, back *net.UDPConn
	limit       atomic.Int64
	dropped     atomic.Uint64
	mu          sync.Mutex
	client      *net.UDPAddr
}

func newRateRelay(t *testing.T) *rateRelay {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &rateRelay{front: front}
}

// start connects the back side to the server's media port.
func (r *rateRelay) start(t *testing.T, server *net.UDPAddr) {
	back, err := net.DialUDP("udp4", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	r.back = back
	var wg sync.WaitGroup
	wg.Add(2)
	t.Cleanup(func() { r.front.Close(); r.back.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		b := make([]byte, 1500)
		for {
			n, from, err := r.front.ReadFromUDP(b)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			r.mu.Unlock()
			_, _ = r.back.Write(b[:n])
		}
	}()
	go func() {
		defer wg.Done()
		r.down()
	}()
}

func (r *rateRelay) down() {
	b := make([]byte, 1500)
	tokens, last := 0.0, time.Now()
	for {
		n, err := r.back.Read(b)
		if err != nil {
			return
		}
		if lim := float64(r.limit.Load()); lim > 0 {
			now := time.Now()
			tokens = min(tokens+now.Sub(last).Seconds()*lim, lim/10)
			last = now
			if tokens < float64(n) {
				r.dropped.Add(1)
				continue
			}
			tokens -= float64(n)
		}
		r.mu.Lock()
		c := r.client
		r.mu.Unlock()
		if c != nil {
			_, _ = r.front.WriteToUDP(b[:n], c)
		}
	}
}

var hostCand = regexp.MustCompile(`(a=candidate:\S+ 1 udp \d+ )127\.0\.0\.1 (\d+)( typ host)`)

// newRelayedPlayer is newRTPPlayer with pion's default interceptors (its
// RRs report loss; with twcc, transport-wide feedback too) and the
// server's candidate replaced by the relay's.
func newRelayedPlayer(t *testing.T, srv *Server, r *rateRelay, query string, twcc bool) *rtpPlayer {
	t.Helper()
	register := webrtc.RegisterDefaultInterceptors
	if !twcc {
		register = func(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
			if err := webrtc.ConfigureNack(m, ir); err != nil {
				return err
			}
			return webrtc.ConfigureRTCPReports(ir)
		}
	}
	pc := newPeerWith(t, peerOptions{interceptors: register})
	p := &rtpPlayer{pc: pc}
	t.Cleanup(func() { _ = pc.Close() })
	addRecvonly(t, pc)
	pc.OnTrack(p.keepVideo)
	offer, gathered := localOffer(t, pc)
	<-gathered
	status, _, answer := post(t, srv.url("/rtc/v1/whep/?"+query), "application/sdp", offer())
	if status != 201 {
		t.Fatalf("WHEP: %d %s", status, answer)
	}
	m1 := hostCand.FindStringSubmatch(answer)
	if m1 == nil {
		t.Fatalf("no 127.0.0.1 UDP candidate in the answer:\n%s", answer)
	}
	port, _ := strconv.Atoi(m1[2])
	r.start(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	relayPort := strconv.Itoa(r.front.LocalAddr().(*net.UDPAddr).Port)
	answer = hostCand.ReplaceAllString(answer, "${1}127.0.0.1 "+relayPort+"${3}")
	setAnswer(t, pc, answer)
	waitConnected(t, pc, 5*time.Second)
	return p
}

// playerEstimate is the bandwidth estimate /api/v1/clients shows beside the
// (one) player's layer.
func playerEstimate(t *testing.T, srv *Server) uint64 {
	t.Helper()
	var r struct {
		Clients []struct {
			Layer *struct {
				Estimate uint64 `json:"estimate_bps"`
			} `json:"layer"`
		} `json:"clients"`
	}
	getJSON(t, srv.url("/api/v1/clients/"), &r)
	for _, c := range r.Clients {
		if c.Layer != nil {
			return c.Layer.Estimate
		}
	}
	t.Fatal("no player with a layer in /api/v1/clients")
	return 0
}
