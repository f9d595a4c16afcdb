package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/fastpath"
)

// TestGarbageDatagrams: junk on the media port is counted and dropped while
// a session keeps streaming byte-exact.
func TestGarbageDatagrams(t *testing.T) {
	h264, ogg := mediaFiles(t)
	srv := startTestServer(t, "")
	q := "app=live&stream=garbage"
	pub := newTestPublisher(t, srv, q)
	player := newTestPlayer(t, srv, q)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { pub.stream(ctx, t, h264, ogg); close(done) }()

	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", srv.fp.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := [][]byte{
		{}, {0xff}, {0x00, 0x01}, make([]byte, 19), // short STUN
		append([]byte{0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 20)...), // STUN without USERNAME
		append([]byte{22, 0xfe, 0xfd}, make([]byte, 30)...),                                 // DTLS from a stranger
		append([]byte{0x80, 96}, make([]byte, 40)...),                                       // RTP from a stranger
		append([]byte{0x80, 200}, make([]byte, 40)...),                                      // RTCP from a stranger
		{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13},                                   // no RFC 7983 range
	}
	before := srv.fp.Stats()
	sent := 0
	for i := 0; i < 1000; i++ {
		_, _ = conn.Write(junk[i%len(junk)])
		sent++
		if i%100 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	<-done
	time.Sleep(300 * time.Millisecond)
	after := srv.fp.Stats()
	drops := after.DropTotal() - before.DropTotal()
	garbage := after.Drops[fastpath.DropGarbage] - before.Drops[fastpath.DropGarbage]
	unknown := after.Drops[fastpath.DropUnknownPeer] - before.Drops[fastpath.DropUnknownPeer]
	rejected, _ := srv.ctl.Stats()
	t.Logf("drops: total %d, garbage %d, unknown peer %d; stun rejected %d", drops, garbage, unknown, rejected.STUNRejected)
	if garbage < 400 || unknown < 300 {
		t.Errorf("junk not counted: garbage %d unknown %d of %d sent", garbage, unknown, sent)
	}
	sentAUs := pub.sentAUs()
	got, _ := player.received()
	m := indexOf(sentAUs, got)
	if m == nil || len(got)-m.got < len(sentAUs)-m.sent {
		t.Fatalf("player lost media during the junk: got %d of %d", len(got), len(sentAUs))
	}
	for j := 0; j < len(sentAUs)-m.sent; j++ {
		if got[m.got+j] != sentAUs[m.sent+j] {
			t.Fatalf("access unit %d differs", m.sent+j)
		}
	}
}

// TestSessionEnds: close_notify, stun_timeout and the active DTLS role.
func TestSessionEnds(t *testing.T) {
	t.Run("close_notify", func(t *testing.T) {
		srv := startTestServer(t, "")
		p := newTestPlayer(t, srv, "app=live&stream=cn")
		waitSessions(t, srv, 1)
		_ = p.pc.Close() // pion sends a DTLS close_notify
		waitSessions(t, srv, 0)
	})
	t.Run("stun_timeout", func(t *testing.T) {
		srv := startTestServer(t, "vhost short.example { rtc { enabled on; stun_timeout 2; } }")
		code, _, body := post(t, srv.url("/rtc/v1/whip/?vhost=short.example&app=live&stream=to"), "application/sdp", curlOffer)
		if code != 201 {
			t.Fatalf("%d %s", code, body)
		}
		waitSessions(t, srv, 1)
		start := time.Now()
		waitSessionsWithin(t, srv, 0, 6*time.Second)
		if d := time.Since(start); d < time.Second {
			t.Errorf("session ended after %v, before its 2 s stun_timeout", d)
		}
	})
	t.Run("dtls_role=active", func(t *testing.T) {
		srv := startTestServer(t, "vhost active.example { rtc { enabled on; dtls_role active; } }")
		p := newTestPlayer(t, srv, "vhost=active.example&app=live&stream=act")
		if got := p.res.Answer; !strings.Contains(got, "a=setup:active") {
			t.Fatalf("answer is not setup:active:\n%s", got)
		}
		waitConnected(t, p.pc, 5*time.Second)
		_ = p.pc.Close()
		waitSessions(t, srv, 0)
	})
}

func waitSessionsWithin(t testing.TB, srv *Server, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, live := srv.ctl.Stats(); live == n {
			return
		}
		if time.Now().After(deadline) {
			_, live := srv.ctl.Stats()
			t.Fatalf("%d sessions live after %v, want %d", live, d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCyclesNoLeak: 500 publish/play/DELETE cycles leave goroutines and
// heap at their baseline.
func TestCyclesNoLeak(t *testing.T) {
	srv := startTestServer(t, "")
	cycle := func(i int) error {
		q := fmt.Sprintf("app=cycle&stream=s%d", i%8)
		pub := newPeer(t)
		defer pub.Close()
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "cycle")
		if err != nil {
			return err
		}
		if _, err := pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return err
		}
		pres := exchange(t, pub, srv.url("/rtc/v1/whip/?"+q))
		play := newPeer(t)
		defer play.Close()
		addRecvonly(t, play)
		lres := exchange(t, play, srv.url("/rtc/v1/whep/?"+q))
		waitConnected(t, pub, 5*time.Second)
		waitConnected(t, play, 5*time.Second)
		for _, loc := range []string{lres.Location, pres.Location} {
			if code, _, body := httpDo(t, http.MethodDelete, srv.url(loc), nil, ""); code != 200 {
				return fmt.Errorf("DELETE: %d %s", code, body)
			}
		}
		return nil
	}
	// Warm up every lazily created pool before the baseline.
	for i := 0; i < 8; i++ {
		if err := cycle(i); err != nil {
			t.Fatal(err)
		}
	}
	waitSessions(t, srv, 0)
	g0, h0 := settle()
	start := time.Now()
	const total, workers = 500, 4
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				if err := cycle(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitSessions(t, srv, 0)
	g1, h1 := settle()
	t.Logf("%d cycles in %v; goroutines %d → %d; heap %.1f → %.1f MiB", total, time.Since(start).Round(time.Millisecond),
		g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if h1 > h0+8<<20 {
		t.Errorf("heap grew from %d to %d bytes", h0, h1)
	}
}

// settle waits for exiting goroutines and returns goroutines and live heap.
func settle() (int, uint64) {
	var g int
	for i := 0; i < 50; i++ {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n == g {
			break
		}
		g = n
		time.Sleep(100 * time.Millisecond)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return g, ms.HeapAlloc
}
