//go:build cgo && !notranscode

// CPU cost of one rtmp_to_rtc audio transcode (AAC 44.1 kHz stereo → decode
// → resample to 48 kHz → libopus 48 kb/s, 20 ms frames), measured with
// getrusage over 10 s of audio on the 2-core dev box (Debian 12, FFmpeg 5.1,
// libopus 1.3.1):
//
//	go test ./bridge/transcode -run TestTranscodeCPU -v
//	→ 0.12 s of CPU per 10 s of audio: 1.2 % of one core per stream
//	  (SRS documents ~2 % per stream for the same job)
//	go test ./bridge/transcode -run '^$' -bench . -benchtime 3x
//	→ BenchmarkAACToOpus-2  3  125279560 ns/op  1.224 core-%/stream

package transcode

import (
	"syscall"
	"testing"
	"time"
)

func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// transcode10s runs 10 s of AAC through a fresh AAC→Opus transcoder and
// returns the CPU time it took.
func transcode10s(t testing.TB, asc []byte, frames [][]byte, rate int) time.Duration {
	tc, err := NewAACToOpus(asc, 48000)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var out []Packet
	start := cpuTime(t)
	for i, f := range frames {
		if out, err = tc.Transcode(f, time.Duration(i)*1024*time.Second/time.Duration(rate), out[:0]); err != nil {
			t.Fatal(err)
		}
	}
	return cpuTime(t) - start
}

func TestTranscodeCPU(t *testing.T) {
	asc, frames, rate := aacTone(t, 10)
	transcode10s(t, asc, frames[:50], rate) // warm up
	cpu := transcode10s(t, asc, frames, rate)
	share := float64(cpu) / float64(10*time.Second) * 100
	t.Logf("AAC→Opus: %v CPU for 10 s of audio = %.2f %% of one core per stream", cpu, share)
	if share > 25 {
		t.Errorf("transcoding costs %.1f %% of a core per stream", share)
	}
}

func BenchmarkAACToOpus(b *testing.B) {
	asc, frames, rate := aacTone(b, 10)
	b.ReportAllocs()
	var total time.Duration
	for b.Loop() {
		total += transcode10s(b, asc, frames, rate)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(10*time.Second)*100, "core-%/stream")
}
