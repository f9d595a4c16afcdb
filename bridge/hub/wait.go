package hub

import (
	"context"
	"sync"
)

// Waitlist lets goroutines wait for a key to become ready (a stream to be
// published, an HLS muxer to start) without polling and without a goroutine
// per waiter: every waiter of a key selects on one channel that Wake closes.
// A key's entry lives only while someone waits on it, so requests for keys
// that never appear leave nothing behind. The zero value is ready to use.
type Waitlist struct {
	mu     sync.Mutex
	keys   map[Key]*waiters
	closed bool
}

type waiters struct {
	ch chan struct{}
	n  int
}

// Wait blocks until ready reports true, ctx ends (ctx.Err is returned) or
// the list is closed (ErrClosed). The owner of the state must make it
// ready before calling Wake, and ready is checked after the waiter is
// registered, so a Wake is never missed.
func (l *Waitlist) Wait(ctx context.Context, key Key, ready func() bool) error {
	for {
		w, err := l.add(key)
		if err != nil {
			return err
		}
		if ready() {
			l.done(key, w)
			return nil
		}
		select {
		case <-w.ch:
		case <-ctx.Done():
		}
		l.done(key, w)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (l *Waitlist) add(key Key) (*waiters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.keys == nil {
		l.keys = make(map[Key]*waiters)
	}
	w := l.keys[key]
	if w == nil {
		w = &waiters{ch: make(chan struct{})}
		l.keys[key] = w
	}
	w.n++
	return w, nil
}

// done unregisters one waiter; the last one of a key removes its entry
// (unless Wake already did).
func (l *Waitlist) done(key Key, w *waiters) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.n--
	if w.n == 0 && l.keys[key] == w {
		delete(l.keys, key)
	}
}

// Wake releases every goroutine waiting on key; each rechecks its ready.
func (l *Waitlist) Wake(key Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.keys[key]; w != nil {
		close(w.ch)
		delete(l.keys, key)
	}
}

// Close releases every waiter with ErrClosed, now and from then on.
func (l *Waitlist) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for k, w := range l.keys {
		close(w.ch)
		delete(l.keys, k)
	}
}

// Waiting returns how many goroutines wait (for tests and metrics).
func (l *Waitlist) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.keys {
		n += w.n
	}
	return n
}
