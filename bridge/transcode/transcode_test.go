//go:build cgo && !notranscode

package transcode

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// aacTone makes secs of a 1 kHz sine as raw AAC frames with ffmpeg.
func aacTone(t testing.TB, secs int) (asc []byte, frames [][]byte, rate int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tone.aac")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "sine=frequency=1000:sample_rate=44100", "-t", strconv.Itoa(secs),
		"-c:a", "aac", "-f", "adts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	cfg := mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	asc, err = cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		frames = append(frames, p.AU)
	}
	return asc, frames, pkts[0].SampleRate
}

// Goertzel returns the power of freq in samples taken at rate.
func Goertzel(samples []float64, freq, rate float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2 float64
	for _, x := range samples {
		s0 := x + k*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - k*s1*s2
}

func TestAACToOpusTone(t *testing.T) {
	asc, frames, rate := aacTone(t, 2)
	tc, err := NewAACToOpus(asc, 48000)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var pkts []Packet
	for i, f := range frames {
		pts := time.Duration(i) * 1024 * time.Second / time.Duration(rate)
		if pkts, err = tc.Transcode(f, pts, pkts); err != nil {
			t.Fatal(err)
		}
	}
	if len(pkts) < 90 {
		t.Fatalf("got %d opus packets for 2 s, want ~100", len(pkts))
	}
	for i := 1; i < len(pkts); i++ {
		if d := pkts[i].PTS - pkts[i-1].PTS; d != 960 {
			t.Fatalf("packet %d: pts step %d, want 960", i, d)
		}
	}
	dec, err := NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pcm []int16
	for _, p := range pkts {
		if pcm, err = dec.Decode(p.Data, pcm); err != nil {
			t.Fatal(err)
		}
	}
	checkTone(t, pcm, 1000)
}

// checkTone checks that the left channel of stereo pcm is dominated by freq.
func checkTone(t *testing.T, pcm []int16, freq float64) {
	t.Helper()
	left := make([]float64, 0, len(pcm)/2)
	for i := 0; i+1 < len(pcm); i += 2 {
		left = append(left, float64(pcm[i]))
	}
	if len(left) < SampleRate/2 {
		t.Fatalf("only %d samples", len(left))
	}
	left = left[len(left)/4:] // skip codec start-up
	best, bestF := 0.0, 0.0
	for f := 100.0; f <= 8000; f += 100 {
		if p := Goertzel(left, f, SampleRate); p > best {
			best, bestF = p, f
		}
	}
	if bestF != freq {
		t.Fatalf("dominant frequency %.0f Hz, want %.0f", bestF, freq)
	}
}

func TestOpusToAAC(t *testing.T) {
	asc, frames, rate := aacTone(t, 2)
	a2o, err := NewAACToOpus(asc, 48000)
	if err != nil {
		t.Fatal(err)
	}
	defer a2o.Close()
	o2a, err := NewOpusToAAC(48000)
	if err != nil {
		t.Fatal(err)
	}
	defer o2a.Close()
	var cfg mpeg4audio.AudioSpecificConfig
	if err := cfg.Unmarshal(o2a.Config()); err != nil || cfg.SampleRate != SampleRate || cfg.ChannelConfig != 2 {
		t.Fatalf("aac config %+v: %v", cfg, err)
	}
	var opus, aac []Packet
	for i, f := range frames {
		if opus, err = a2o.Transcode(f, time.Duration(i)*1024*time.Second/time.Duration(rate), opus[:0]); err != nil {
			t.Fatal(err)
		}
		for _, p := range opus {
			if aac, err = o2a.Transcode(p.Data, time.Duration(p.PTS)*time.Second/SampleRate, aac); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(aac) < 80 { // 2 s at 48 kHz is ~93 frames of 1024
		t.Fatalf("%d aac frames for 2 s", len(aac))
	}
	for i := 1; i < len(aac); i++ {
		if d := aac[i].PTS - aac[i-1].PTS; d != 1024 {
			t.Fatalf("aac frame %d: pts step %d, want 1024", i, d)
		}
	}
}
