package relay

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// relay is one stream's pull, owned by its run goroutine.
type relay struct {
	m   *Manager
	key key
	log *slog.Logger

	ready     chan struct{} // closed after the first dial, firstErr set before
	readyOnce sync.Once
	firstErr  error
	stop      chan struct{}
	stopOnce  sync.Once
	since     time.Time
	idleSince time.Time // run's: when the last local player left, zero while some play
	lastPull  time.Time // guarded by Manager.mu: the last Pull that found or opened it

	mu        sync.Mutex // guards owner, connected and via, read by info
	owner     string
	connected bool
	via       string // the node pulled from: the owner, or where a full owner sent the pull

	reconnects, bytes, packets atomic.Uint64
}

// end says why serve returned.
type end uint8

const (
	endLost  end = iota + 1 // the upstream failed or its virtual publisher was ended
	endMoved                // Locate names another owner
	endStop                 // Close, or the grace period after the last player ran out
)

// markReady releases the Pulls waiting for the first dial.
func (r *relay) markReady(err error) {
	r.readyOnce.Do(func() {
		r.firstErr = err
		close(r.ready)
	})
}

// run dials, serves and redials the relay until it is stopped or idle.
func (r *relay) run() {
	defer r.m.wg.Done()
	defer r.m.forget(r)
	backoff, first, dial := backoffMin, true, true
	for {
		owner := r.currentOwner()
		if dial {
			ok, began := r.attempt(owner, first)
			if first && !ok {
				return
			}
			first = first && !ok
			if !began.IsZero() && time.Since(began) > backoffMax {
				backoff = backoffMin
			}
		}
		if r.stopped() || !r.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
		k := r.key
		if r.m.cfg.Host.HasPublisher(k.vhost, k.app, k.stream) {
			// Published here (after the owner died): that publisher
			// feeds the players now.
			r.log.Info("relay ended: the stream is published here")
			return
		}
		_, dial = r.relocate() // nobody else owns it: wait for a publisher somewhere
	}
}

// attempt dials owner once and serves the upstream until it ends; ok is
// false when the dial failed, began when serving started (zero if not).
func (r *relay) attempt(owner string, first bool) (ok bool, began time.Time) {
	up, err := r.dial(owner)
	if err != nil {
		r.m.cnt.failures.Add(1)
		if first {
			r.log.Warn("relay dial failed", "owner", owner, "err", err)
			r.m.forget(r) // before the waiting Pulls return: the next one dials anew
			r.markReady(err)
			return false, began
		}
		r.log.Info("relay redial failed", "owner", owner, "err", err)
		return false, began
	}
	if !first {
		r.reconnects.Add(1)
		r.m.cnt.reconnects.Add(1)
	}
	r.markReady(nil)
	r.setConnected(true, up.via)
	r.log.Info("relay connected", "owner", owner)
	began = time.Now()
	why := r.serve(up)
	r.setConnected(false, "")
	up.close()
	if why == endStop {
		r.log.Info("relay closed", "bytes", r.bytes.Load(), "packets", r.packets.Load())
		r.stopOnce.Do(func() { close(r.stop) })
		r.reopen(owner)
		return true, began
	}
	r.log.Info("relay upstream lost", "owner", owner, "moved", why == endMoved)
	return true, began
}

// stopped reports whether the relay was told to stop (Close, or idle).
func (r *relay) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// sleep waits d, checking for idleness; false when the relay must end.
func (r *relay) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return !r.idle()
	}
}

// serve keeps a connected upstream: keyframe requests go up (at most one
// per KeyframeInterval, a later one waits), idleness and the owner are
// checked.
func (r *relay) serve(up *upstream) end {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastPLI, lastLocate time.Time
	pending := false
	for {
		select {
		case <-r.stop:
			return endStop
		case <-up.lost:
			return endLost
		case <-up.vp.Done():
			return endLost
		case <-up.vp.KeyframeRequests():
			pending = true
		case now := <-tick.C:
			if r.idle() {
				return endStop
			}
			if now.Sub(lastLocate) >= relocateEvery {
				lastLocate = now
				if owner, found := r.relocate(); found && owner != up.owner {
					return endMoved
				}
			}
		}
		if now := time.Now(); pending && now.Sub(lastPLI) >= KeyframeInterval {
			up.pli()
			lastPLI, pending = now, false
		}
	}
}

// idle reports whether the grace period after the last local player ran out.
func (r *relay) idle() bool {
	k := r.key
	if r.m.cfg.Host.Players(k.vhost, k.app, k.stream) > 0 {
		r.idleSince = time.Time{}
		return false
	}
	now := time.Now()
	if r.idleSince.IsZero() {
		r.idleSince = now
	}
	return now.Sub(r.idleSince) >= r.m.cfg.Grace && r.m.retire(r)
}

// relocate asks Locator for the owner again. found is true when another
// node owns the stream (owner is then it), and also on a Locator error
// (the registry is down: keep pulling from the last owner); false when no
// other node owns it now. The last owner is kept unless another is found.
func (r *relay) relocate() (owner string, found bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	k := r.key
	o, ok, err := r.m.cfg.Locator.Locate(ctx, k.vhost, k.app, k.stream)
	if err != nil {
		r.m.cnt.locateErrs.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	found = err != nil || ok && o != r.m.cfg.Self
	if err == nil && found {
		r.owner = o
	}
	return r.owner, found
}

func (r *relay) currentOwner() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owner
}

func (r *relay) setConnected(c bool, via string) {
	r.mu.Lock()
	r.connected, r.via = c, via
	r.mu.Unlock()
}

func (r *relay) info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.key
	in := Info{Vhost: k.vhost, App: k.app, Stream: k.stream, Connected: r.connected, Since: r.since,
		Reconnects: r.reconnects.Load(), Bytes: r.bytes.Load(), Packets: r.packets.Load()}
	if r.connected {
		in.Upstream = r.via
	}
	return in
}

// reopen starts a new relay when a player joined while this one retired
// (it found the old virtual publisher and so did not Pull).
func (r *relay) reopen(owner string) {
	r.m.mu.Lock()
	closed := r.m.closed
	r.m.mu.Unlock()
	k := r.key
	if !closed && r.m.cfg.Host.Players(k.vhost, k.app, k.stream) > 0 {
		_, _ = r.m.open(k, owner)
	}
}
