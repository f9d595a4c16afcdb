package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSubscribeWait: readers that ask before the publish get the stream
// when it comes; a reader whose context ends gets ctx.Err and leaves no
// waiter; Close releases the rest with ErrClosed.
func TestSubscribeWait(t *testing.T) {
	leakCheck(t)
	h := New(Config{})
	k := NewKey("", "live", "w")
	type res struct {
		r   *Reader
		err error
	}
	got := make(chan res, 3)
	for range 3 {
		go func() {
			r, err := h.SubscribeWait(context.Background(), k)
			got <- res{r, err}
		}()
	}
	for waitersOf(h, k) != 3 {
		time.Sleep(time.Millisecond)
	}
	p, err := h.Publish(k, tracks)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.r.Close()
	}
	// Readers attach on the stream's owner goroutine: the count follows.
	for end := time.Now().Add(2 * time.Second); p.Readers() != 3 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if p.Readers() != 3 || h.Waiting() != 0 {
		t.Fatalf("%d readers, %d keys waited on", p.Readers(), h.Waiting())
	}
	p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.SubscribeWait(ctx, NewKey("", "live", "never")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a stream never published: %v", err)
	}
	if h.Waiting() != 0 {
		t.Fatalf("%d keys waited on after the timeout", h.Waiting())
	}

	go func() {
		_, err := h.SubscribeWait(context.Background(), k)
		got <- res{nil, err}
	}()
	for h.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	h.Close()
	if r := <-got; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("wait across Close: %v, want ErrClosed", r.err)
	}
}

// waitersOf counts the goroutines waiting on k.
func waitersOf(h *Hub, k Key) int {
	h.live.mu.Lock()
	defer h.live.mu.Unlock()
	if w := h.live.keys[k]; w != nil {
		return w.n
	}
	return 0
}

// TestSubscribeWaitWants: a reader of a stream that is not live tells
// Config.Want once, which publishes it (a relay on an edge); a reader of a
// live stream does not; Want itself always asks; Readers counts.
func TestSubscribeWaitWants(t *testing.T) {
	leakCheck(t)
	var h *Hub
	var wants []Key
	var pub *Publisher
	h = New(Config{Want: func(_ context.Context, k Key) {
		wants = append(wants, k)
		if pub == nil {
			var err error
			if pub, err = h.Publish(k, tracks); err != nil {
				t.Error(err)
			}
		}
	}})
	defer h.Close()
	k := NewKey("", "live", "relayed")
	r, err := h.SubscribeWait(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r2, err := h.SubscribeWait(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	h.Want(context.Background(), k)
	for end := time.Now().Add(2 * time.Second); h.Readers(k) != 2 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if len(wants) != 2 || wants[0] != k || h.Readers(k) != 2 || h.Readers(NewKey("", "live", "x")) != 0 {
		t.Fatalf("wants %v, readers %d", wants, h.Readers(k))
	}
	pub.Close()
}
