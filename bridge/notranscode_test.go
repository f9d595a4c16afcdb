//go:build !cgo || notranscode

package bridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fanout/fanout/bridge/hub"
)

type kindCounter struct {
	mu     sync.Mutex
	n      map[Kind]int
	closed chan struct{}
}

func (c *kindCounter) OpenRTC(hub.Key, RTCMedia) (RTPWriter, error) { return c, nil }
func (c *kindCounter) WriteRTP(k Kind, _ []byte) error {
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
	return nil
}
func (c *kindCounter) Close() error { close(c.closed); return nil }

// TestRTMPToRTCVideoOnlyWithoutTranscode: in a notranscode build,
// rtmp_to_rtc still sends the video and no audio.
func TestRTMPToRTCVideoOnlyWithoutTranscode(t *testing.T) {
	checkLeaks(t)
	c := &kindCounter{n: map[Kind]int{}, closed: make(chan struct{})}
	s := startBridge(t, Config{Outlet: c, Options: func(string) VhostOptions {
		o := DefaultVhostOptions()
		o.RTMPToRTC = true
		return o
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := pushTone(ctx, "rtmp://"+s.rtmpAddr+"/live/v", 2).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg push: %v: %s", err, out)
	}
	<-c.closed
	if c.n[KindVideo] < 40 || c.n[KindAudio] != 0 {
		t.Fatalf("video %d audio %d packets, want video only", c.n[KindVideo], c.n[KindAudio])
	}
}
