package hub

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("goroutine leak: %d before, %d after", before, n)
		}
	})
}

var tracks = Tracks{Video: CodecH264, Audio: CodecAAC, AudioConfig: []byte{0x12, 0x10}}

func video(i int, key bool) *Unit {
	return &Unit{Codec: CodecH264, PTS: time.Duration(i) * 40 * time.Millisecond,
		DTS: time.Duration(i) * 40 * time.Millisecond, NALUs: [][]byte{{0x65, byte(i)}}, Key: key}
}

func TestPublishTwiceIsBusy(t *testing.T) {
	leakCheck(t)
	h := New(Config{})
	defer h.Close()
	k := NewKey("", "live", "a")
	p, err := h.Publish(k, tracks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(k, tracks); !errors.Is(err, ErrStreamBusy) {
		t.Fatalf("second publish: %v, want ErrStreamBusy", err)
	}
	p.Close()
	p2, err := h.Publish(k, tracks)
	if err != nil {
		t.Fatalf("republish after close: %v", err)
	}
	p2.Close()
	if _, err := h.Subscribe(k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

// TestSlowReaderDropsNotStalls: a reader that never reads loses units and
// counts them, while the publisher keeps writing and a fast reader gets
// everything.
func TestSlowReaderDropsNotStalls(t *testing.T) {
	leakCheck(t)
	h := New(Config{ReaderQueue: 16, GOPCache: -1})
	defer h.Close()
	k := NewKey("v", "live", "b")
	p, err := h.Publish(k, tracks)
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := h.Subscribe(k)
	fast, _ := h.Subscribe(k)
	got := make(chan int)
	var read atomic.Int64 // units the fast reader has taken
	go func() {
		for range fast.Units() {
			read.Add(1)
		}
		got <- int(read.Load())
	}()
	const total = 1000
	var inWrite time.Duration // time spent inside Write: the stall, if any
	for i := range total {
		// "Fast" is a reader that is never more than half its queue
		// behind. A fixed sleep every 16 writes let a descheduled reader
		// goroutine fall a whole queue behind on a loaded machine (4 in
		// 300 runs beside a CPU hog), so the publisher waits for it here,
		// outside the timed Write.
		for wait := time.Now(); int64(i)-read.Load() > 8; runtime.Gosched() {
			if time.Since(wait) > 5*time.Second {
				t.Fatalf("fast reader stuck at %d of %d units", read.Load(), i)
			}
		}
		w := time.Now()
		p.Write(video(i, i%50 == 0))
		inWrite += time.Since(w)
	}
	if inWrite > 2*time.Second {
		t.Fatalf("publisher stalled: %v inside Write for %d writes", inWrite, total)
	}
	p.Close()
	if n := <-got; n != total {
		t.Errorf("fast reader got %d of %d", n, total)
	}
	n := 0
	for range slow.Units() {
		n++
	}
	if n > 16 || slow.Dropped() < total-16*4 {
		t.Errorf("slow reader: got %d, dropped %d", n, slow.Dropped())
	}
	slow.Close()
	fast.Close()
}

// TestGOPCacheStartsAtKey: a late reader starts at the last key unit.
func TestGOPCacheStartsAtKey(t *testing.T) {
	leakCheck(t)
	h := New(Config{})
	defer h.Close()
	k := NewKey("", "live", "c")
	p, _ := h.Publish(k, tracks)
	defer p.Close()
	for i := range 10 {
		p.Write(video(i, i == 0 || i == 5))
	}
	p.Write(&Unit{Codec: CodecAAC, Frame: []byte{1}})
	time.Sleep(20 * time.Millisecond)
	r, err := h.Subscribe(k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u := <-r.Units()
	if !u.Key || u.NALUs[0][1] != 5 {
		t.Fatalf("first unit %+v, want the key unit 5", u)
	}
	for i := 6; i < 10; i++ {
		if u := <-r.Units(); u.NALUs[0][1] != byte(i) {
			t.Fatalf("unit %d out of order", i)
		}
	}
	if u := <-r.Units(); u.Codec != CodecAAC {
		t.Fatalf("want the audio unit, got %v", u.Codec)
	}
}

func TestReaderCloseDetaches(t *testing.T) {
	leakCheck(t)
	h := New(Config{})
	k := NewKey("", "live", "d")
	p, _ := h.Publish(k, tracks)
	r, _ := h.Subscribe(k)
	r.Close()
	if _, ok := <-r.Units(); ok {
		t.Fatal("queue open after Close")
	}
	if p.Readers() != 0 {
		t.Fatalf("%d readers after close", p.Readers())
	}
	h.Close()
	p.Close()
}
