package node

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// longGOP writes an H.264 file of secs seconds with one keyframe, at the
// start: what a browser or aiortc publisher looks like between PLIs.
func longGOP(t *testing.T, secs int) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "long.h264")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
		"-i", "testsrc=size=320x240:rate=30", "-t", strconv.Itoa(secs), "-c:v", "libx264", "-profile:v", "baseline",
		"-bf", "0", "-g", "100000", "-keyint_min", "100000", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-x264-params", "slices=1", "-f", "h264", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return f
}

// firstKeyAt is when the player completed its first access unit that
// starts with an SPS (a keyframe), zero before.
func (p *testPlayer) firstKeyAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstKey
}

// pliLog records when a publisher's video sender got PLIs.
type pliLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *pliLog) read(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				l.mu.Lock()
				l.at = append(l.at, time.Now())
				l.mu.Unlock()
			}
		}
	}
}

func (l *pliLog) since(t0 time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.at {
		if !at.Before(t0) {
			n++
		}
	}
	return n
}

// TestKeyframeReplayBound (issue 15 item 2): a publisher that sends one
// keyframe and then only deltas. A player that joins while the GOP is
// young gets it replayed; one that joins when it is older than
// keyframe_replay_age (2 s) gets no replay, and the publisher is asked for
// a fresh keyframe (it sees a PLI) instead.
func TestKeyframeReplayBound(t *testing.T) {
	video := longGOP(t, 6)
	srv := startTestServer(t, "")
	q := "app=live&stream=longgop"
	pub := newTestPublisher(t, srv, q)
	var plis pliLog
	for _, s := range pub.pc.GetSenders() {
		if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
			go plis.read(s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	start := time.Now()
	go func() { pub.sendVideo(ctx, t, video); close(done) }()
	defer func() { cancel(); <-done }()

	time.Sleep(time.Second)
	young := newTestPlayer(t, srv, q)
	time.Sleep(500 * time.Millisecond)
	s := srv.fp.Stats()
	if s.GOPReplayed == 0 || s.GOPTooOld != 0 {
		t.Fatalf("a player joining %v into the GOP: %d packets replayed, %d replays refused; want some, 0",
			time.Since(start).Round(100*time.Millisecond), s.GOPReplayed, s.GOPTooOld)
	}
	if young.firstKeyAt().IsZero() {
		t.Error("the young GOP's player got no keyframe from the replay")
	}

	time.Sleep(time.Until(start.Add(4 * time.Second)))
	joined := time.Now()
	newTestPlayer(t, srv, q)
	deadline := time.Now().Add(2 * time.Second)
	for plis.since(joined) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s2 := srv.fp.Stats()
	t.Logf("young join: %d packets replayed; old join: %d more replayed, %d refused, %d PLIs at the publisher after it",
		s.GOPReplayed, s2.GOPReplayed-s.GOPReplayed, s2.GOPTooOld, plis.since(joined))
	if s2.GOPReplayed != s.GOPReplayed || s2.GOPTooOld != 1 {
		t.Errorf("a player joining 4 s into the GOP: %d packets replayed, %d refused; want 0, 1",
			s2.GOPReplayed-s.GOPReplayed, s2.GOPTooOld)
	}
	if plis.since(joined) == 0 {
		t.Error("the publisher was not asked for a fresh keyframe after the late join")
	}
}
