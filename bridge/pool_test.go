package bridge

import (
	"log/slog"
	"sync/atomic"
	"testing"
)

// TestPoolIsolatesPanics: a job that panics is reported to its own stream
// and the worker keeps serving other streams.
func TestPoolIsolatesPanics(t *testing.T) {
	checkLeaks(t)
	p := newPool(1, 4, slog.New(slog.DiscardHandler))
	var failed, ran atomic.Int32
	p.submit(0, func() { panic("codec exploded") }, func(error) { failed.Add(1) })
	p.submit(0, func() { ran.Add(1) }, nil)
	done := make(chan struct{})
	p.submitWait(0, func() { close(done) })
	<-done
	if failed.Load() != 1 || ran.Load() != 1 {
		t.Fatalf("failed %d ran %d", failed.Load(), ran.Load())
	}
	// A full queue drops instead of blocking.
	block := make(chan struct{})
	p.submit(0, func() { <-block }, nil)
	dropped := 0
	for range 10 {
		if !p.submit(0, func() {}, nil) {
			dropped++
		}
	}
	close(block)
	if dropped == 0 || p.dropped.Load() != uint64(dropped) {
		t.Fatalf("dropped %d, counted %d", dropped, p.dropped.Load())
	}
	p.close()
}
