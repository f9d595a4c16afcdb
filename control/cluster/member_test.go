package cluster

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// leakCheck fails the test if it leaves goroutines behind (go-redis's
// reconnect probe may take a second to notice its pool closed).
func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for i := 0; i < 300 && runtime.NumGoroutine() > before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// clock is a settable time for Memory's TTLs.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder collects a member's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) has(want Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == want {
			return true
		}
	}
	return false
}

func newTestMember(reg Registry, id string, players *int) *Member {
	return NewMember(reg, MemberConfig{NodeID: id, URL: "http://" + id, MaxPlayers: 2, TTL: 3 * time.Second,
		Load: func() Load { return Load{Players: *players} }})
}

var live = Stream{"__defaultVhost__", "live", "livestream"}

func TestMemberClaimLocateRelease(t *testing.T) {
	ctx := context.Background()
	reg := NewMemory(nil)
	pa, pb := 0, 0
	a, b := newTestMember(reg, "a", &pa), newTestMember(reg, "b", &pb)
	a.round(ctx)
	b.round(ctx)
	if owner, err := a.Claim(ctx, live); err != nil || owner != "a" {
		t.Fatalf("a claims: %q %v", owner, err)
	}
	if owner, err := b.Claim(ctx, live); err != nil || owner != "a" {
		t.Fatalf("b claims a's stream: %q %v", owner, err)
	}
	if c := b.Counters(); c.Conflicts != 1 || c.Claims != 0 {
		t.Errorf("b counters %+v", c)
	}
	if u, ok, err := b.Locate(ctx, live.Vhost, live.App, live.Name); u != "http://a" || !ok || err != nil {
		t.Errorf("b locates %q %v %v", u, ok, err)
	}
	if _, ok, _ := a.Locate(ctx, live.Vhost, live.App, live.Name); ok {
		t.Error("a locates its own stream as remote")
	}
	// b keeps claiming while its publisher stays: a's release hands it over.
	b.round(ctx)
	if c := b.Counters(); c.Conflicts != 1 {
		t.Errorf("b counted the same conflict again: %+v", c)
	}
	if err := a.Release(ctx, live); err != nil {
		t.Fatal(err)
	}
	b.round(ctx)
	if owner, _, _ := reg.Owner(ctx, live); owner != "b" {
		t.Fatalf("after a released, b's round: owner %q, want b", owner)
	}
	if err := b.Release(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, live); err != nil { // lost to b: a no-op
		t.Fatal(err)
	}
	if owner, _, _ := reg.Owner(ctx, live); owner != "b" {
		t.Fatalf("a released b's stream: owner %q", owner)
	}
	if err := b.Release(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Locate(ctx, live.Vhost, live.App, live.Name); ok {
		t.Error("released stream still located")
	}
}

func TestMemberTTLExpiryWhenNodeDies(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1000, 0)}
	reg := NewMemory(clk.now)
	pa, pb := 0, 0
	a, b := newTestMember(reg, "a", &pa), newTestMember(reg, "b", &pb)
	var rec recorder
	b.Watch(rec.add)
	a.round(ctx)
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	b.round(ctx)
	if !rec.has(Event{Kind: StreamUp, Node: "a", Stream: live}) {
		t.Fatalf("b did not see a's stream: %+v", rec.events)
	}
	// a stops heartbeating (dies); b keeps going. Within one TTL a is gone.
	for range 4 {
		clk.add(time.Second)
		b.round(ctx)
	}
	if !rec.has(Event{Kind: NodeDown, Node: "a"}) || !rec.has(Event{Kind: StreamDown, Node: "a", Stream: live}) {
		t.Fatalf("b did not see a die: %+v", rec.events)
	}
	// A republish on b takes the stream over.
	if owner, err := b.Claim(ctx, live); err != nil || owner != "b" {
		t.Fatalf("republish on b: %q %v", owner, err)
	}
}

func TestMemberRefreshKeepsClaim(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1000, 0)}
	reg := NewMemory(clk.now)
	pa := 0
	a := newTestMember(reg, "a", &pa)
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	for range 10 { // ten rounds of TTL/3: far past one TTL
		clk.add(time.Second)
		a.round(ctx)
	}
	if owner, ok, _ := reg.Owner(ctx, live); !ok || owner != "a" {
		t.Fatalf("claim not refreshed: %q %v", owner, ok)
	}
}

func TestMemberOutageAndRebuild(t *testing.T) {
	ctx := context.Background()
	reg := NewMemory(nil)
	pa := 0
	a := newTestMember(reg, "a", &pa)
	a.round(ctx)
	if _, err := a.Claim(ctx, live); err != nil {
		t.Fatal(err)
	}
	reg.SetDown(true)
	a.round(ctx)
	if a.Healthy() {
		t.Fatal("healthy while the registry is down")
	}
	other := Stream{"v", "live", "during-outage"}
	if _, err := a.Claim(ctx, other); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim while down: %v", err)
	}
	if _, _, err := a.Locate(ctx, "v", "live", "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("locate while down: %v", err)
	}
	if _, _, err := a.LeastLoaded(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("least loaded while down: %v", err)
	}
	reg.SetDown(false) // back, empty (a restart without persistence)
	a.round(ctx)
	for _, s := range []Stream{live, other} {
		if owner, ok, _ := reg.Owner(ctx, s); !ok || owner != "a" {
			t.Errorf("%v not rebuilt: %q %v", s, owner, ok)
		}
	}
	if nodes, _ := reg.Nodes(ctx); len(nodes) != 1 || nodes[0].ID != "a" {
		t.Errorf("node key not rebuilt: %+v", nodes)
	}
	if c := a.Counters(); c.Rebuilds != 1 || c.Errors < 4 {
		t.Errorf("counters %+v", c)
	}
}

func TestMemberLeastLoaded(t *testing.T) {
	ctx := context.Background()
	reg := NewMemory(nil)
	pa, pb, pc := 2, 1, 0
	a, b, c := newTestMember(reg, "a", &pa), newTestMember(reg, "b", &pb), newTestMember(reg, "c", &pc)
	for _, m := range []*Member{a, b, c} {
		m.round(ctx)
	}
	if !a.Full() || b.Full() {
		t.Fatalf("full: a %v b %v", a.Full(), b.Full())
	}
	if n, ok, err := a.LeastLoaded(ctx); !ok || err != nil || n.ID != "c" {
		t.Fatalf("least loaded from a: %+v %v %v", n, ok, err)
	}
	pc = 2 // c full too
	c.round(ctx)
	if n, ok, _ := a.LeastLoaded(ctx); !ok || n.ID != "b" {
		t.Fatalf("least loaded with c full: %+v", n)
	}
	if n, ok, _ := a.LeastLoaded(ctx, "b"); ok {
		t.Fatalf("least loaded except b, with c full: %+v", n)
	}
	pb = 2
	b.round(ctx)
	if n, ok, _ := a.LeastLoaded(ctx); ok {
		t.Fatalf("a found %+v with every node full", n)
	}
}

func TestMemberStartCloseEvents(t *testing.T) {
	leakCheck(t)
	reg := NewMemory(nil)
	pa, pb := 0, 0
	a, b := newTestMember(reg, "a", &pa), newTestMember(reg, "b", &pb)
	var rec recorder
	b.Watch(rec.add)
	a.Start()
	b.Start()
	if _, err := a.Claim(context.Background(), live); err != nil {
		t.Fatal(err)
	}
	a.Close() // releases, leaves: b hears both by pub/sub, well before a sweep
	deadline := time.Now().Add(2 * time.Second)
	for !(rec.has(Event{Kind: StreamDown, Node: "a", Stream: live})) {
		if time.Now().After(deadline) {
			t.Fatalf("b did not hear a leave: %+v", rec.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := b.Status(context.Background())
	if len(st.Nodes) != 1 || st.Nodes[0].ID != "b" || len(st.Owners) != 0 || !st.Healthy {
		t.Errorf("status after a left: %+v", st)
	}
	b.Close()
}
