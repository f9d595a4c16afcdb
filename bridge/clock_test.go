package bridge

import (
	"testing"
	"time"
)

func TestRTPClockStartsAtOnceAndWraps(t *testing.T) {
	c := rtpClock{rate: 90000}
	start := uint32(0xFFFFFFFF - 45000) // wraps after 0.5 s
	c.observe(start, 100*time.Millisecond)
	for i, want := range []time.Duration{100, 600, 1100} {
		ts := start + uint32(i)*45000
		c.observe(ts, 0)
		if got := c.time(ts); got != want*time.Millisecond {
			t.Fatalf("step %d: %v, want %v ms", i, got, want)
		}
	}
	// A late (reordered) timestamp never moves time backwards.
	if got := c.time(start + 45000 - 9000); got != 1100*time.Millisecond {
		t.Fatalf("reordered: %v", got)
	}
}

func TestRTPClockSRReanchors(t *testing.T) {
	c := rtpClock{rate: 48000}
	c.observe(1000, 0)
	// The sender says ts 1000+48000 was sampled at stream time 1.2 s
	// (arrival-based mapping says 1.0 s).
	c.sync(1000+48000, 1200*time.Millisecond)
	c.observe(1000+96000, 0)
	if got := c.time(1000 + 96000); got != 2200*time.Millisecond {
		t.Fatalf("after SR: %v, want 2.2 s", got)
	}
}

func TestNTPDuration(t *testing.T) {
	if d := ntpDuration(uint64(10)<<32 | 1<<31); d != 10500*time.Millisecond {
		t.Fatalf("ntp: %v", d)
	}
}
