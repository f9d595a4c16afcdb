package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// GenerateMedia makes a looping test stream with ffmpeg in dir: an H.264
// Annex-B file (no B-frames, keyframe every 50 frames) at about bitrate, and
// an Ogg/Opus file, both 10 s long. It returns their paths.
func GenerateMedia(ctx context.Context, dir string, bitrate int) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	h264 := filepath.Join(dir, "bench.h264")
	ogg := filepath.Join(dir, "bench.ogg")
	vb := strconv.Itoa(max(bitrate-64000, 100000))
	v := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30", "-t", "10", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "50", "-b:v", vb,
		"-maxrate", vb, "-bufsize", vb, "-f", "h264", h264)
	if out, err := v.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("ffmpeg h264: %w: %s", err, out)
	}
	a := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10",
		"-c:a", "libopus", "-b:a", "64k", "-page_duration", "20000", "-f", "ogg", ogg)
	if out, err := a.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("ffmpeg opus: %w: %s", err, out)
	}
	return h264, ogg, nil
}
