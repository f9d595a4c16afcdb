package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// TestSimulcastChromium: headless Chromium publishes its fake camera
// through whip.html?simulcast=on (VP8, three encodings at full, half and
// quarter size); pion players pinned to h, m and l each read the picture
// size from the VP8 key frames they get (RFC 6386 §9.1), which must shrink
// from h to m to l, and no payload reaches two of them. whep.html?layer=l
// shows the layer it plays and switches live to h through the WHEP layer
// extension, decoding throughout.
func TestSimulcastChromium(t *testing.T) {
	b := startPagesBrowser(t)
	srv := startTestServer(t, "")
	page := func(path, query string) string {
		return fmt.Sprintf("http://%s%s?autostart=true&api=%d&stream=sim-chromium&%s", srv.HTTPAddr(), path,
			srv.APIAddr().Port(), query)
	}
	pub := b.tab(t, "publisher", page("/players/whip.html", "simulcast=on&codec=vp8"))
	got := b.waitAll(t, 20*time.Second, map[string]context.Context{"pub": pub}, func(s pageStats) bool {
		return s.State == "connected" && len(s.Encodings) == 3 && minFramesSent(s) > 0
	})
	t.Logf("publisher encodings: %+v", got["pub"].Encodings)

	q := "app=live&stream=sim-chromium"
	players := map[string]*vp8Player{}
	for _, l := range simRIDs {
		players[l] = newVP8Player(t, srv, q+"&layer="+l)
	}
	whep := b.tab(t, "whep", page("/players/whep.html", "layer=l"))
	deadline := time.Now().Add(20 * time.Second)
	for !allSized(players) {
		if time.Now().After(deadline) {
			t.Fatalf("players without a key frame after 20s: %s", describe(players))
		}
		time.Sleep(200 * time.Millisecond)
	}
	h, m, l := players["h"].size(), players["m"].size(), players["l"].size()
	if !(h[0] > m[0] && m[0] > l[0] && h[1] > m[1] && m[1] > l[1]) {
		t.Errorf("key frame sizes h %v m %v l %v: not h > m > l", h, m, l)
	}
	for a, pa := range players {
		for c, pc := range players {
			if a < c && pa.overlaps(pc) {
				t.Errorf("players %s and %s got the same payload", a, c)
			}
		}
	}
	t.Logf("pion players: %s", describe(players))

	low := b.waitAll(t, 15*time.Second, map[string]context.Context{"whep": whep}, func(s pageStats) bool {
		return decoding(s) && s.Layer == "l"
	})["whep"]
	if _, err := chromedp.Run(whep, chromedp.Evaluate[any]("selectLayer('h')", chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("selectLayer: %v", err)
	}
	t0 := time.Now()
	high := b.waitAll(t, 15*time.Second, map[string]context.Context{"whep": whep}, func(s pageStats) bool {
		return decoding(s) && s.Layer == "h" && s.Width > low.Width && s.FramesDecoded > low.FramesDecoded
	})["whep"]
	t.Logf("whep.html: layer l at %dpx wide, %d frames; switched to h (%dpx, %d frames) in %v",
		low.Width, low.FramesDecoded, high.Width, high.FramesDecoded, time.Since(t0).Round(time.Millisecond))
}

func minFramesSent(s pageStats) int {
	n := -1
	for _, e := range s.Encodings {
		if n < 0 || e.FramesSent < n {
			n = e.FramesSent
		}
	}
	return n
}

// vp8Player is a pion WHEP player that reads the picture size of the VP8
// key frames it receives and keeps a hash of every payload.
type vp8Player struct {
	pc     *webrtc.PeerConnection
	mu     sync.Mutex
	w, h   int
	keys   int
	frames int
	hashes map[[32]byte]bool
}

func newVP8Player(t testing.TB, srv *Server, query string) *vp8Player {
	t.Helper()
	p := &vp8Player{pc: newPeer(t), hashes: map[[32]byte]bool{}}
	t.Cleanup(func() { _ = p.pc.Close() })
	addRecvonly(t, p.pc)
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			p.read(tr)
		}
	})
	exchangeHdr(t, p.pc, srv.url("/rtc/v1/whep/?"+query))
	waitConnected(t, p.pc, 5*time.Second)
	return p
}

func (p *vp8Player) read(tr *webrtc.TrackRemote) {
	var vp codecs.VP8Packet
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		payload, err := vp.Unmarshal(pkt.Payload)
		p.mu.Lock()
		p.hashes[sha256.Sum256(pkt.Payload)] = true
		if pkt.Marker {
			p.frames++
		}
		// A key frame's first partition starts with the frame tag, the
		// start code 9d 01 2a and the 14-bit width and height (RFC 6386 §9.1).
		if err == nil && vp.S == 1 && vp.PID == 0 && len(payload) >= 10 && payload[0]&1 == 0 &&
			payload[3] == 0x9d && payload[4] == 0x01 && payload[5] == 0x2a {
			p.w = int(binary.LittleEndian.Uint16(payload[6:]) & 0x3fff)
			p.h = int(binary.LittleEndian.Uint16(payload[8:]) & 0x3fff)
			p.keys++
		}
		p.mu.Unlock()
	}
}

func (p *vp8Player) size() [2]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return [2]int{p.w, p.h}
}

func (p *vp8Player) overlaps(o *vp8Player) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	for h := range p.hashes {
		if o.hashes[h] {
			return true
		}
	}
	return false
}

func allSized(ps map[string]*vp8Player) bool {
	for _, p := range ps {
		p.mu.Lock()
		ok := p.keys > 0 && p.frames > 30
		p.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

func describe(ps map[string]*vp8Player) string {
	s := ""
	for _, l := range simRIDs {
		p := ps[l]
		p.mu.Lock()
		s += fmt.Sprintf("%s: %dx%d, %d key frames, %d frames; ", l, p.w, p.h, p.keys, p.frames)
		p.mu.Unlock()
	}
	return s
}
