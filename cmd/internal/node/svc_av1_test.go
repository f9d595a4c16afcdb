package node

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/fastpath/av1dd"
)

// ddPlayer is a pion WHEP player that negotiates the AV1 dependency
// descriptor and keeps every video packet it gets.
type ddPlayer struct {
	rtpPlayer
	id uint8 // its descriptor id, from the answer
}

// newDDPeer is newPeer whose media engine offers the dependency descriptor.
func newDDPeer(t testing.TB) *webrtc.PeerConnection {
	t.Helper()
	return newPeerWith(t, peerOptions{media: func(m *webrtc.MediaEngine) error {
		return m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: av1dd.URI}, webrtc.RTPCodecTypeVideo)
	}})
}

func newDDPlayer(t testing.TB, srv *Server, query string) *ddPlayer {
	t.Helper()
	p := &ddPlayer{rtpPlayer: rtpPlayer{pc: newDDPeer(t)}}
	t.Cleanup(func() { _ = p.pc.Close() })
	p.play(t, srv, query, func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		for _, e := range r.GetParameters().HeaderExtensions {
			if e.URI == av1dd.URI {
				p.mu.Lock()
				p.id = uint8(e.ID)
				p.mu.Unlock()
			}
		}
		p.keepVideo(tr, r)
	})
	return p
}

// ddFrame is one frame a player got: its packets' payloads and
// descriptors, and the frame's temporal id.
type ddFrame struct {
	ts    uint32
	tid   uint8
	parts [][]byte // payload, then descriptor, of each packet
}

// frames parses the descriptors of what p got, from the first one that
// carries the template structure on; it fails on a descriptor that does
// not parse after it.
func (p *ddPlayer) frames(t *testing.T, name string) (pkts []rtp.Packet, frames []ddFrame) {
	t.Helper()
	p.mu.Lock()
	id, all := p.id, append([]rtp.Packet(nil), p.pkts...)
	p.mu.Unlock()
	if id == 0 {
		t.Fatalf("%s: the answer negotiated no dependency descriptor", name)
	}
	var s av1dd.Structure
	var d av1dd.Descriptor
	for i, pk := range all {
		dd := pk.GetExtension(id)
		if dd == nil {
			if len(pkts) > 0 {
				pkts = append(pkts, pk) // padding: no descriptor
			}
			continue
		}
		if err := av1dd.Parse(dd, &s, &d); err != nil {
			if s.Valid() {
				t.Fatalf("%s: packet %d: descriptor %x: %v", name, i, dd, err)
			}
			continue // before the first key frame's structure
		}
		if len(pkts) == 0 && !d.HasStructure {
			continue
		}
		if len(pkts) == 0 {
			t.Logf("%s: first key frame descriptor (id %d): %x", name, id, dd)
		}
		if d.StartOfFrame {
			frames = append(frames, ddFrame{ts: pk.Timestamp, tid: d.Temporal})
		}
		if len(frames) > 0 {
			f := &frames[len(frames)-1]
			f.parts = append(f.parts, pk.Payload, dd)
		}
		pkts = append(pkts, pk)
	}
	return pkts, frames
}

// TestSVCChromiumAV1: headless Chromium publishes AV1 L1T3 through
// whip.html?svc=L1T3&codec=av1, with the dependency descriptor negotiated;
// pion players capped at TID 0, TIDs 0–1 and uncapped get, by the
// descriptors they receive (forwarded under their own ids), only those
// temporal layers, about 1/4, 1/2 and all of the frames, with consecutive
// sequence numbers, each frame byte for byte (payloads and descriptors)
// what the uncapped player got of it; a Chromium player capped at TID 0
// keeps decoding.
func TestSVCChromiumAV1(t *testing.T) {
	b := startPagesBrowser(t)
	srv := startTestServer(t, "")
	pub := b.tab(t, "publisher", fmt.Sprintf("http://%s/players/whip.html?autostart=true&api=%d&stream=svc-av1&svc=L1T3&codec=av1",
		srv.HTTPAddr(), srv.APIAddr().Port()))
	b.waitAll(t, 15*time.Second, map[string]context.Context{"pub": pub}, func(s pageStats) bool {
		return s.State == "connected" && s.FramesSent > 0
	})
	q := "app=live&stream=svc-av1"
	caps := []int{0, 1, 2}
	players := []*ddPlayer{newDDPlayer(t, srv, q+"&temporal=0"), newDDPlayer(t, srv, q+"&temporal=1"), newDDPlayer(t, srv, q)}
	// A Chromium player capped at TID 0 decodes what the descriptors it
	// gets describe: every frame it is sent refers only to frames it got.
	view := b.tab(t, "player", fmt.Sprintf("http://%s/players/whep.html?autostart=true&api=%d&stream=svc-av1&temporal=0",
		srv.HTTPAddr(), srv.APIAddr().Port()))
	time.Sleep(4 * time.Second)
	st := b.waitAll(t, 10*time.Second, map[string]context.Context{"player": view}, func(s pageStats) bool {
		return s.FramesDecoded >= 12
	})["player"]
	// It keeps decoding: the next frame is waited for (≤ 5 s), not looked
	// for after a fixed second. TID 0 is a quarter of Chromium's AV1
	// frames, about 5 a second here, and a loaded machine slows
	// Chromium's AV1 encoder more than anything of Fanout's.
	again, since := st, time.Now()
	for again.FramesDecoded <= st.FramesDecoded && time.Since(since) < 5*time.Second {
		time.Sleep(100 * time.Millisecond)
		again = evalStats(t, view)
	}
	if again.FramesDecoded <= st.FramesDecoded || !strings.Contains(strings.ToUpper(again.Codec), "AV1") {
		t.Errorf("Chromium player at TID 0: %d frames decoded, still %d 5 s later, codec %q", st.FramesDecoded, again.FramesDecoded, again.Codec)
	} else {
		t.Logf("Chromium player at TID 0 (%s): %d frames decoded, %d after %v more", again.Codec, st.FramesDecoded, again.FramesDecoded,
			time.Since(since).Round(time.Millisecond))
	}
	var got [3][]ddFrame
	for i, p := range players {
		name := fmt.Sprintf("player TID<=%d", caps[i])
		pkts, frames := p.frames(t, name)
		checkContinuous(t, name, pkts)
		got[i] = frames
		tids := map[uint8]int{}
		for _, f := range frames {
			tids[f.tid]++
			if int(f.tid) > caps[i] {
				t.Fatalf("%s got a frame of temporal layer %d", name, f.tid)
			}
		}
		if len(tids) != caps[i]+1 {
			t.Fatalf("%s got frames of temporal layers %v, want 0…%d", name, tids, caps[i])
		}
		t.Logf("%s: %d packets, frames per temporal layer %v", name, len(pkts), tids)
	}
	all := map[uint32]ddFrame{}
	for _, f := range got[2] {
		all[f.ts] = f
	}
	first, last := got[2][0].ts, got[2][len(got[2])-1].ts
	for i := range 2 {
		n, compared := 0, 0
		for _, f := range got[i] {
			if int32(f.ts-first) < 0 || int32(f.ts-last) > 0 {
				continue
			}
			n++
			ref, ok := all[f.ts]
			if !ok {
				t.Fatalf("TID<=%d: frame ts %d (tid %d) not among the uncapped player's", caps[i], f.ts, f.tid)
			}
			if !equalParts(f.parts, ref.parts) {
				t.Fatalf("TID<=%d: frame ts %d differs from the uncapped player's", caps[i], f.ts)
			}
			compared++
		}
		want := len(got[2]) >> (2 - i) // T0: 1/4; T0+T1: 1/2
		if compared < 10 || n < want*2/3 || n > want*3/2 {
			t.Errorf("TID<=%d: %d frames in the uncapped player's %d, want about %d", caps[i], n, len(got[2]), want)
		}
		t.Logf("TID<=%d: %d of the uncapped player's %d frames, byte-exact", caps[i], n, len(got[2]))
	}
}

func equalParts(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
