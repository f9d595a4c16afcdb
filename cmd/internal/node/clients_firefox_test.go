package node

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const firefoxPath = "/usr/bin/firefox-esr"

// firefoxResult is one "RESULT" line of testdata/clients/firefox.mjs.
type firefoxResult struct {
	Name  string          `json:"name"`
	Ms    int64           `json:"ms"`
	Value json.RawMessage `json:"value"`
}

// TestClientsFirefox publishes Firefox ESR's fake camera and microphone
// (VP8 + Opus) through Fanout's own /players/whip.html and plays it back
// through /players/whep.html, headless, driven by puppeteer-core over
// WebDriver BiDi: the player decodes VP8 and Fanout relays both tracks.
func TestClientsFirefox(t *testing.T) {
	npmDir, err := filepath.Abs(filepath.Join("testdata", "npm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(firefoxPath); err != nil {
		t.Skip("firefox-esr not installed (.ci/deps.sh test)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed (.ci/deps.sh test)")
	}
	if _, err := os.Stat(filepath.Join(npmDir, "node_modules", "puppeteer-core")); err != nil {
		t.Skip("puppeteer-core not installed in testdata/npm (.ci/deps.sh test runs npm ci there)")
	}
	p := newNetnsPair(t, 0)
	api := p.startFanout(t, "")
	page := func(name string) string {
		return fmt.Sprintf("http://%s:8080/players/%s?autostart=true&api=1985&stream=firefox&codec=vp8", p.IPB, name)
	}
	tmp := t.TempDir()
	ff := p.spawn(t, p.A, "firefox", []string{"FANOUT_NPM_DIR=" + npmDir, "TMPDIR=" + tmp, "HOME=" + tmp},
		"node", filepath.Join(clientsDir(t), "firefox.mjs"), page("whip.html"), page("whep.html"), p.IPB.String(),
		filepath.Join(tmp, "profile"))
	if !ff.waitLine(`"name":"player"`, 45*time.Second) {
		_ = ff.exited(5 * time.Second)
		t.Fatal("Firefox's player page never decoded a frame")
	}
	pubAudio, playAudio, playVideo := firefoxCounters(t, p, api)
	if pubAudio == 0 || playAudio == 0 || playVideo == 0 {
		t.Errorf("Fanout's counters: audio from Firefox %d, to Firefox %d; video to Firefox %d", pubAudio, playAudio, playVideo)
	}
	if err := ff.exited(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := firefoxResults(ff)
	var play, pub pageStats
	_ = json.Unmarshal(got["player2s"].Value, &play)
	_ = json.Unmarshal(got["publisher2s"].Value, &pub)
	if !strings.EqualFold(play.Codec, "video/VP8") || play.FramesDecoded < 10 || pub.FramesSent < 10 {
		t.Errorf("Firefox: player decodes %q, %d frames; publisher sent %d frames", play.Codec, play.FramesDecoded, pub.FramesSent)
	}
	t.Logf("%s: published at %d ms, first frame at %d ms; 2 s later %d frames decoded, %d sent; Fanout relayed %d audio packets",
		strings.Trim(string(got["browser"].Value), `"`), got["publisher"].Ms, got["player"].Ms, play.FramesDecoded, pub.FramesSent, playAudio)
}

// firefoxCounters waits up to 4 s for Fanout's counters of the "firefox"
// stream (refreshed every second) to show audio from the publisher and
// audio and video to the player, and returns them.
func firefoxCounters(t *testing.T, p *netnsPair, api string) (pubAudio, playAudio, playVideo uint64) {
	t.Helper()
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		for _, c := range p.clients(t, api) {
			if c.Stream != "firefox" || len(c.Quality.Tracks) < 2 {
				continue
			}
			if c.Publish {
				pubAudio = c.Quality.Tracks[0].Packets
			} else {
				playAudio, playVideo = c.Quality.Tracks[0].Packets, c.Quality.Tracks[1].Packets
			}
		}
		if pubAudio > 0 && playAudio > 0 && playVideo > 0 {
			break
		}
	}
	return pubAudio, playAudio, playVideo
}

// firefoxResults collects firefox.mjs's RESULT lines by name.
func firefoxResults(ff *netnsChild) map[string]firefoxResult {
	got := map[string]firefoxResult{}
	ff.mu.Lock()
	defer ff.mu.Unlock()
	for _, l := range ff.out {
		if _, js, ok := strings.Cut(l, "RESULT "); ok {
			var r firefoxResult
			if err := json.Unmarshal([]byte(js), &r); err == nil {
				got[r.Name] = r
			}
		}
	}
	return got
}
