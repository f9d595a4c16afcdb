package bridge

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func fastHLS(string) VhostOptions {
	o := DefaultVhostOptions()
	o.HLSFragment, o.HLSWindow = time.Second, 10*time.Second
	return o
}

// TestRTMPToFLVHLSRTMP pushes the brief's ffmpeg stream into the RTMP server
// and plays it back through HTTP-FLV, HLS and RTMP with ffprobe/ffmpeg; a
// second publisher of the same stream is refused.
func TestRTMPToFLVHLSRTMP(t *testing.T) {
	checkLeaks(t)
	s := startBridge(t, Config{Options: fastHLS})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	url := "rtmp://" + s.rtmpAddr + "/live/test"
	push := pushTone(ctx, url, 6)
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	waitLive(t, s, "live", "test")
	time.Sleep(2500 * time.Millisecond) // let HLS cut a first segment
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := map[string][]string{}
	var mu sync.Mutex
	probe := func(name, src string) {
		defer wg.Done()
		c := probeCodecs(ctx, t, src)
		mu.Lock()
		results[name] = c
		mu.Unlock()
	}
	wg.Add(4)
	go probe("flv", s.httpURL+"/live/test.flv")
	go probe("hls", s.httpURL+"/live/test.m3u8")
	go func() {
		defer wg.Done()
		rec := filepath.Join(dir, "play.flv")
		out, err := run(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", url, "-t", "1.5",
			"-c", "copy", "-f", "flv", rec)
		if err != nil {
			t.Errorf("ffmpeg rtmp play: %v: %s", err, out)
			return
		}
		c := probeCodecs(ctx, t, rec)
		mu.Lock()
		results["rtmp"] = c
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		second := pushTone(ctx, url, 1)
		if out, err := second.CombinedOutput(); err == nil {
			t.Errorf("second publisher of a live stream was accepted: %s", out)
		}
	}()
	wg.Wait()
	for _, name := range []string{"flv", "hls", "rtmp"} {
		if !hasCodecs(results[name], "h264", "aac") {
			t.Errorf("%s: codecs %v, want h264 and aac", name, results[name])
		}
	}
	if err := push.Wait(); err != nil {
		t.Errorf("ffmpeg push: %v", err)
	}
}
