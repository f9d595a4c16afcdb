package node

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestClientsAiortc publishes with aiortc's own encoders, which make a
// keyframe only when asked (PLI/FIR), and plays the stream with an aiortc
// and a pion player joining a few seconds apart: both decode (aiortc) or see
// keyframes (pion), receive the same payloads, and neither asks for more
// than a few percent of its packets again (no NACK storm).
func TestClientsAiortc(t *testing.T) {
	requireAiortc(t)
	p := newNetnsPair(t, 0)
	api := p.startFanout(t, "")
	const play = 12
	stream := "aiortc"
	// VP8: Debian's aiortc 1.4.0 makes keyframes only when asked, and only
	// its VP8 encoder honours the ask (its H.264 _encode_frame drops
	// force_keyframe), so a GOP older than keyframe_replay_age is started
	// by the PLI each join sends, as the issue wants it tested.
	pub := p.startAiortc(t, "aiortc-publisher", "publish", api+"/rtc/v1/whip/?app=live&codec=vp8&stream="+stream, strconv.Itoa(play+10))
	p.waitPublisher(t, api, stream, 20*time.Second)
	time.Sleep(3 * time.Second) // a GOP that only grows: no keyframe unless asked

	url := api + "/rtc/v1/whep/?app=live&stream=" + stream
	aioOut := filepath.Join(t.TempDir(), "aiortc.json")
	aio := p.startAiortc(t, "aiortc-player", "play", url, strconv.Itoa(play), aioOut)
	time.Sleep(2 * time.Second)
	pion, pionOut := p.startPionPlayer(t, url, play-2)
	if _, ok := pion.result("connected", 20*time.Second); !ok {
		t.Fatal("pion player did not connect")
	}
	time.Sleep(time.Duration(play-4) * time.Second)

	// Both players still play: read what Fanout counted for them.
	checkNoNACKStorm(t, p.clients(t, api), stream, 2)
	if err := aio.exited(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := pion.wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	a, b := readClientRecv(t, pionOut), readClientRecv(t, aioOut)
	for _, kind := range []string{"audio", "video"} {
		x, y := a.ordered(kind), b.ordered(kind)
		n, err := compareStreams(x, y)
		if err != nil || n < min(len(x), len(y))*9/10 {
			t.Errorf("%s: pion (%d packets) and aiortc (%d) share %d: %v", kind, len(x), len(y), n, err)
		}
		t.Logf("%s: %d packets in common, pion %d, aiortc %d", kind, n, len(x), len(y))
	}
	if a.Frames["video_keyframes"] == 0 || b.Frames["video"] < 50 {
		t.Errorf("pion saw %d keyframes; aiortc decoded %d video frames", a.Frames["video_keyframes"], b.Frames["video"])
	}
	if err := pub.exited(20 * time.Second); err != nil {
		t.Error(err)
	}
}

// checkNoNACKStorm checks Fanout's counters of stream's players: want of
// them, each sent video and NACKing at most 3 % of its video packets.
func checkNoNACKStorm(t *testing.T, clients []apiClient, stream string, want int) {
	t.Helper()
	players := 0
	for _, c := range clients {
		if c.Stream != stream || c.Publish || len(c.Quality.Tracks) < 2 {
			continue
		}
		players++
		v := c.Quality.Tracks[1]
		t.Logf("player: %d video packets sent, %d replayed, %d NACKed, %d lost", v.Packets, c.Quality.Replayed, c.Quality.NACKs, v.Lost)
		if v.Packets < 50 {
			t.Errorf("player got %d video packets", v.Packets)
		}
		if c.Quality.NACKs*100 > 3*v.Packets {
			t.Errorf("NACK storm: a player asked again for %d of %d video packets (want ≤ 3 %%)", c.Quality.NACKs, v.Packets)
		}
	}
	if players != want {
		t.Errorf("Fanout lists %d players of %s, want %d", players, stream, want)
	}
}
