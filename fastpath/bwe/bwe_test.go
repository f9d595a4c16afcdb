package bwe

import (
	"testing"
	"time"

	"github.com/fanout/fanout/fastpath/twcc"
)

const ms = int64(time.Millisecond)

// link is a bottleneck: a FIFO served at rate bps that drops what would
// wait longer than buffer, or (policer) drops what exceeds the rate with no
// queue at all; 20 ms one way.
type link struct {
	rate    float64
	buffer  int64
	policer bool
	free    int64 // when the link is next idle
	rec     twcc.Recorder
	fb      []byte
	fbCount uint8
}

func (l *link) send(seq uint16, size int, at int64) {
	tx := int64(float64(size*8) / l.rate * 1e9)
	start := max(at, l.free)
	if l.policer && start > at || start-at > l.buffer {
		return // dropped
	}
	l.free = start + tx
	l.rec.Record(seq, l.free+20*ms)
}

// feed delivers the receiver's feedback to e at now (20 ms back).
func (l *link) feed(e *Estimator, now int64) {
	for l.rec.Pending() {
		n, ok := l.rec.BuildFeedback(l.fb, 1, 2, l.fbCount)
		if !ok {
			return
		}
		l.fbCount++
		e.OnFeedback(l.fb[12:n], now+20*ms)
	}
}

// run sends rate bps in 1000-byte packets (30 frames a second, each frame
// a burst) through l for d, feeding back every 100 ms, and returns the
// estimate after each second.
func run(e *Estimator, l *link, from, d int64, rate func(est float64) float64) (end int64, perSecond []float64) {
	const size = 1000
	now, nextFb, nextSec := from, from+100*ms, from+time.Second.Nanoseconds()
	for now < from+d {
		frame := rate(e.Estimate()) / 8 / 30
		for b := 0.0; b < frame; b += size {
			l.send(e.Stamp(size, now), size, now)
		}
		now += 33 * ms
		if now >= nextFb {
			l.feed(e, now)
			nextFb += 100 * ms
		}
		if now >= nextSec {
			perSecond = append(perSecond, e.Estimate())
			nextSec += time.Second.Nanoseconds()
		}
	}
	return now, perSecond
}

func fixed(bps float64) func(float64) float64 { return func(float64) float64 { return bps } }

// TestCongestionDownAndUp: 1.2 Mbps into a 400 kbps queue (300 ms deep)
// is detected by delay and cut below 400 kbps within a second; 150 kbps on
// a free link then grows to the caller's ceiling, and no further.
func TestCongestionDownAndUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    link
	}{
		{"queue", link{rate: 400e3, buffer: 300 * ms}},
		{"policer", link{rate: 400e3, policer: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New()
			l := tc.l
			l.fb = make([]byte, 1200)
			now, warm := run(e, &link{rate: 100e6, buffer: time.Second.Nanoseconds(), fb: make([]byte, 1200)}, 0, 3*time.Second.Nanoseconds(), fixed(1.2e6))
			if warm[len(warm)-1] < 1.1e6 {
				t.Fatalf("free link at 1.2 Mbps: estimate %v, want ≥ 1.1 Mbps", warm)
			}
			now, down := run(e, &l, now, 2*time.Second.Nanoseconds(), fixed(1.2e6))
			t.Logf("congested: %.0f kbps/s, %+v", down, e.Stats)
			if down[0] > 400e3 {
				t.Errorf("after 1 s at 1.2 Mbps into 400 kbps the estimate is %.0f", down[0])
			}
			free := link{rate: 100e6, buffer: time.Second.Nanoseconds(), fb: make([]byte, 1200)}
			free.free = now
			e.Ceiling = 700e3
			_, up := run(e, &free, now, 8*time.Second.Nanoseconds(), fixed(150e3))
			t.Logf("free at 150 kbps, ceiling 700 kbps: %.0f", up)
			if up[6] < 690e3 || up[7] > 701e3 {
				t.Errorf("estimate %v: want the 700 kbps ceiling within 7 s and no more", up)
			}
		})
	}
}

// TestSteady: a player that receives what it is sent keeps an estimate at
// least that rate, with no decrease.
func TestSteady(t *testing.T) {
	e := New()
	l := link{rate: 5e6, buffer: 500 * ms, fb: make([]byte, 1200)}
	_, est := run(e, &l, 0, 10*time.Second.Nanoseconds(), fixed(2e6))
	if e.Stats.Decreases != 0 || est[len(est)-1] < 1.9e6 {
		t.Errorf("2 Mbps on 5 Mbps: estimate %v, %+v", est, e.Stats)
	}
}

func TestZeroAlloc(t *testing.T) {
	e := New()
	l := link{rate: 2e6, buffer: 200 * ms, fb: make([]byte, 1200)}
	now := int64(0)
	seq := uint16(0)
	if a := testing.AllocsPerRun(1000, func() { now += ms; seq = e.Stamp(1000, now); l.send(seq, 1000, now) }); a != 0 {
		t.Errorf("Stamp: %v allocs", a)
	}
	n, _ := l.rec.BuildFeedback(l.fb, 1, 2, 0)
	fb := append([]byte(nil), l.fb[12:n]...)
	if a := testing.AllocsPerRun(100, func() { now += 100 * ms; e.OnFeedback(fb, now) }); a != 0 {
		t.Errorf("OnFeedback: %v allocs", a)
	}
}
