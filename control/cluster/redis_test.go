package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fanout/fanout/control/cluster/redistest"
)

func newRedis(t *testing.T, r *redistest.Server) *Redis {
	t.Helper()
	reg, err := NewRedis(r.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

func TestRedisClaimRefreshRelease(t *testing.T) {
	leakCheck(t)
	ctx := context.Background()
	srv := redistest.New(t)
	reg := newRedis(t, srv)
	// The claim must outlive its TTL through refreshes every TTL/3: a
	// stall of TTL·2/3 between two refreshes loses it, so a 400 ms TTL
	// failed on the test's own scheduling under load; 1.5 s leaves a 1 s
	// stall.
	const ttl = 1500 * time.Millisecond
	if owner, err := reg.Claim(ctx, live, "a", ttl); err != nil || owner != "a" {
		t.Fatalf("claim: %q %v", owner, err)
	}
	if owner, err := reg.Claim(ctx, live, "b", ttl); err != nil || owner != "a" {
		t.Fatalf("second claim: %q %v", owner, err)
	}
	if held, err := reg.Refresh(ctx, live, "b", ttl); held || err != nil {
		t.Fatalf("b refreshed a's claim: %v %v", held, err)
	}
	for range 4 { // refreshed past its TTL
		time.Sleep(ttl / 3)
		if held, err := reg.Refresh(ctx, live, "a", ttl); !held || err != nil {
			t.Fatalf("refresh: %v %v", held, err)
		}
	}
	if err := reg.Release(ctx, live, "b"); err != nil {
		t.Fatal(err)
	}
	if owners, err := reg.Owners(ctx); err != nil || owners[live] != "a" {
		t.Fatalf("after b's release: %v %v", owners, err)
	}
	if err := reg.Release(ctx, live, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := reg.Owner(ctx, live); ok || err != nil {
		t.Fatalf("after release: %v %v", ok, err)
	}
}

// TestRedisNodeDiesTTL: a node that stops heartbeating disappears, with its
// streams, within one TTL; the survivor hears it and can take the stream.
func TestRedisNodeDiesTTL(t *testing.T) {
	leakCheck(t)
	ctx := context.Background()
	srv := redistest.New(t)
	pa, pb := 0, 0
	a := NewMember(newRedis(t, srv), MemberConfig{NodeID: "a", URL: "http://a", TTL: 600 * time.Millisecond,
		Load: func() Load { return Load{Players: pa} }})
	b := NewMember(newRedis(t, srv), MemberConfig{NodeID: "b", URL: "http://b", TTL: 600 * time.Millisecond,
		Load: func() Load { return Load{Players: pb} }})
	var rec recorder
	b.Watch(rec.add)
	b.Start()
	defer b.Close()
	// a heartbeats (until b has seen it) and claims, then "dies" (never
	// runs again). b learns of live nodes only by sweeping, there is no
	// node-up event: left to b's 200 ms ticker, a loaded machine could
	// delay b's first sweep past a's 600 ms TTL, and b, never having
	// known a, would hear no NodeDown.
	for i := 0; !b.knows("a"); i++ {
		if i == 10 {
			t.Fatal("b's sweep never saw a alive")
		}
		a.round(ctx)
		b.sweep(ctx)
	}
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, &rec, Event{Kind: StreamUp, Node: "a", Stream: live}, time.Second) // by pub/sub
	start := time.Now()
	waitEvent(t, &rec, Event{Kind: StreamDown, Node: "a", Stream: live}, 2*time.Second)
	waitEvent(t, &rec, Event{Kind: NodeDown, Node: "a"}, time.Second)
	t.Logf("a's death seen %v after its last write (TTL 600ms, sweep 200ms)", time.Since(start))
	if owner, err := b.Claim(ctx, live); err != nil || owner != "b" {
		t.Fatalf("republish on b: %q %v", owner, err)
	}
}

// knows reports whether m's last sweep listed node id.
func (m *Member) knows(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.nodes[id]
	return ok
}

func waitEvent(t *testing.T, rec *recorder, want Event, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !rec.has(want) {
		if time.Now().After(deadline) {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			t.Fatalf("no %+v within %v: %+v", want, d, rec.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisRestartRebuilds: redis-server restarts empty; within one TTL
// every member's node key and every owned stream are back, and events flow
// again on the resubscribed channel.
func TestRedisRestartRebuilds(t *testing.T) {
	leakCheck(t)
	ctx := context.Background()
	srv := redistest.New(t)
	// go-redis probes a refused server once a second, so the TTL (and its
	// round, TTL/3) must leave room for that probe.
	const ttl = 3 * time.Second
	zero := func() Load { return Load{} }
	a := NewMember(newRedis(t, srv), MemberConfig{NodeID: "a", URL: "http://a", TTL: ttl, Load: zero})
	b := NewMember(newRedis(t, srv), MemberConfig{NodeID: "b", URL: "http://b", TTL: ttl, Load: zero})
	var rec recorder
	b.Watch(rec.add)
	a.Start()
	defer a.Close()
	b.Start()
	defer b.Close()
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for deadline := time.Now().Add(ttl); a.Healthy() || b.Healthy(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("members healthy one TTL after redis-server stopped")
		}
	}
	if u, ok, err := b.Locate(ctx, live.Vhost, live.App, live.Name); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("locate with redis-server stopped: %q %v %v", u, ok, err)
	}
	srv.Start()
	restarted := time.Now()
	reg := newRedis(t, srv)
	for {
		nodes, err1 := reg.Nodes(ctx)
		owner, ok, err2 := reg.Owner(ctx, live)
		if err1 == nil && err2 == nil && len(nodes) == 2 && ok && owner == "a" {
			break
		}
		if time.Since(restarted) > ttl {
			t.Fatalf("registry not whole one TTL after the restart: nodes %+v owner %q %v", nodes, owner, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("registry whole %v after the restart (TTL %v)", time.Since(restarted), ttl)
	if c := a.Counters(); c.Rebuilds < 1 || c.Errors < 1 {
		t.Errorf("a counters %+v", c)
	}
	// pub/sub works again: b hears a new stream at once.
	other := Stream{"v", "live", "after"}
	deadline := time.Now().Add(2 * time.Second)
	for !rec.has(Event{Kind: StreamUp, Node: "a", Stream: other}) && time.Now().Before(deadline) {
		if _, err := a.Claim(ctx, other); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitEvent(t, &rec, Event{Kind: StreamUp, Node: "a", Stream: other}, time.Millisecond)
}

// TestRedisPubSubEvents: claims, releases and leaves reach another member
// by pub/sub, long before its sweep (TTL/3 = 10 s here) could see them.
// Each is awaited pubSubWait: far below the sweep, so only pub/sub can
// deliver it, and far above a loopback round trip (it was 500 ms, which
// a stalled test process alone could use up).
func TestRedisPubSubEvents(t *testing.T) {
	const pubSubWait = 3 * time.Second
	leakCheck(t)
	ctx := context.Background()
	srv := redistest.New(t)
	b := NewMember(newRedis(t, srv), MemberConfig{NodeID: "b", URL: "http://b", TTL: 30 * time.Second})
	var rec recorder
	b.Watch(rec.add)
	b.Start()
	defer b.Close()
	a := NewMember(newRedis(t, srv), MemberConfig{NodeID: "a", URL: "http://a", TTL: 30 * time.Second})
	a.Start()
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, &rec, Event{Kind: StreamUp, Node: "a", Stream: live}, pubSubWait)
	if err := a.Release(ctx, live); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, &rec, Event{Kind: StreamDown, Node: "a", Stream: live}, pubSubWait)
	// b's snapshot knows a only from its sweep; a's leave is announced.
	b.sweep(ctx)
	a.Close()
	waitEvent(t, &rec, Event{Kind: NodeDown, Node: "a"}, pubSubWait)
}
