package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Claim records that s's publisher is on this node and claims s in the
// registry. owner is who owns s afterwards: this node's id when it won,
// another node's when that one holds it (counted once as a conflict; s is
// kept and claimed again each round, so a publisher that came here while
// a dead owner's key lived takes over when it expires). While the
// registry is unavailable s is kept and err wraps ErrUnavailable: the
// next successful round claims it.
func (m *Member) Claim(ctx context.Context, s Stream) (owner string, err error) {
	m.mu.Lock()
	m.owned[s] = struct{}{}
	m.mu.Unlock()
	owner, err = m.reg.Claim(ctx, s, m.cfg.NodeID, m.cfg.TTL)
	if m.noteErr(err) {
		return "", err
	}
	won := owner == m.cfg.NodeID
	m.mu.Lock()
	_, wasLost := m.lost[s]
	switch {
	case won:
		m.counters.Claims++
		delete(m.lost, s)
	case !wasLost:
		m.counters.Conflicts++
		m.lost[s] = struct{}{}
	}
	m.mu.Unlock()
	if !won && !wasLost {
		m.log.Warn("cluster: stream owned by another node; this node's publisher is not registered until that claim ends",
			"stream", s.String(), "owner", owner)
	}
	if won || !wasLost {
		m.apply(Event{Kind: StreamUp, Node: owner, Stream: s})
	}
	return owner, nil
}

// Release forgets s (its publisher left this node) and deletes its owner
// key if this node holds it.
func (m *Member) Release(ctx context.Context, s Stream) error {
	m.mu.Lock()
	_, ok := m.owned[s]
	_, lost := m.lost[s]
	delete(m.owned, s)
	delete(m.lost, s)
	m.mu.Unlock()
	if !ok || lost {
		return nil
	}
	err := m.reg.Release(ctx, s, m.cfg.NodeID)
	if m.noteErr(err) {
		return err
	}
	m.mu.Lock()
	m.counters.Releases++
	m.mu.Unlock()
	m.apply(Event{Kind: StreamDown, Node: m.cfg.NodeID, Stream: s})
	return nil
}

// Lookup returns s's owner as its heartbeat describes it; ok is false when
// no live node owns s.
func (m *Member) Lookup(ctx context.Context, s Stream) (owner NodeInfo, ok bool, err error) {
	id, ok, err := m.reg.Owner(ctx, s)
	if m.noteErr(err) || !ok {
		return NodeInfo{}, false, err
	}
	if id == m.cfg.NodeID {
		return m.self(), true, nil
	}
	nodes, err := m.reg.Nodes(ctx)
	if m.noteErr(err) {
		return NodeInfo{}, false, err
	}
	for _, n := range nodes {
		if n.ID == id {
			return n, true, nil
		}
	}
	return NodeInfo{}, false, nil // its node key expired: the owner is dead
}

// Locate is the relay's question: the base URL of the node that owns
// vhost/app/stream. ok is false when no live node owns it, or this node
// does. err wraps ErrUnavailable when the registry cannot be asked.
func (m *Member) Locate(ctx context.Context, vhost, app, stream string) (ownerURL string, ok bool, err error) {
	n, ok, err := m.Lookup(ctx, Stream{Vhost: vhost, App: app, Name: stream})
	if err != nil || !ok || n.ID == m.cfg.NodeID {
		return "", false, err
	}
	return n.URL, true, nil
}

// Full says this node is at or over its player capacity (MaxPlayers);
// without a capacity it does not ask Load.
func (m *Member) Full() bool { return m.cfg.MaxPlayers > 0 && m.self().Full() }

// LeastLoaded is the live node other than this one (and than except,
// such as a relaying edge that asks) that is not full and has the fewest
// players (then the least CPU); ok is false when none is.
func (m *Member) LeastLoaded(ctx context.Context, except ...string) (NodeInfo, bool, error) {
	nodes, err := m.reg.Nodes(ctx)
	if m.noteErr(err) {
		return NodeInfo{}, false, err
	}
	var best NodeInfo
	found := false
	for _, n := range nodes {
		if n.ID == m.cfg.NodeID || n.Full() || n.URL == "" || slices.Contains(except, n.ID) {
			continue
		}
		if !found || n.Players < best.Players || n.Players == best.Players && n.CPU < best.CPU {
			best, found = n, true
		}
	}
	return best, found, nil
}

// Watch calls fn for every change the member sees (pub/sub or sweep),
// from its goroutines, without locks held; fn must return quickly.
// cancel stops the calls.
func (m *Member) Watch(fn func(Event)) (cancel func()) {
	m.mu.Lock()
	id := m.nextW
	m.nextW++
	m.watchers[id] = fn
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.watchers, id)
		m.mu.Unlock()
	}
}

// apply folds e into the snapshot and tells the watchers if it changed
// anything.
func (m *Member) apply(e Event) {
	m.mu.Lock()
	changed := false
	switch e.Kind {
	case StreamUp:
		changed = m.owners[e.Stream] != e.Node
		m.owners[e.Stream] = e.Node
	case StreamDown:
		_, changed = m.owners[e.Stream]
		changed = changed && m.owners[e.Stream] == e.Node
		if changed {
			delete(m.owners, e.Stream)
		}
	case NodeDown:
		_, changed = m.nodes[e.Node]
		delete(m.nodes, e.Node)
	}
	m.mu.Unlock()
	if changed {
		m.notify([]Event{e})
	}
}

func (m *Member) notify(events []Event) {
	if len(events) == 0 {
		return
	}
	m.mu.Lock()
	fns := slices.Collect(maps.Values(m.watchers))
	m.mu.Unlock()
	for _, e := range events {
		for _, fn := range fns {
			fn(e)
		}
	}
}

// sweep reads every node and owner and reports what changed since the
// last sweep: this is how expiries (dead nodes) become events.
func (m *Member) sweep(ctx context.Context) {
	nodes, err := m.reg.Nodes(ctx)
	if m.noteErr(err) {
		return
	}
	owners, err := m.reg.Owners(ctx)
	if m.noteErr(err) {
		return
	}
	live := make(map[string]NodeInfo, len(nodes))
	for _, n := range nodes {
		live[n.ID] = n
	}
	var events []Event
	m.mu.Lock()
	for id := range m.nodes {
		if _, ok := live[id]; !ok {
			events = append(events, Event{Kind: NodeDown, Node: id})
		}
	}
	for s, id := range m.owners {
		if _, ok := owners[s]; !ok {
			events = append(events, Event{Kind: StreamDown, Node: id, Stream: s})
		}
	}
	for s, id := range owners {
		if m.owners[s] != id {
			events = append(events, Event{Kind: StreamUp, Node: id, Stream: s})
		}
	}
	m.nodes, m.owners = live, owners
	m.mu.Unlock()
	m.notify(events)
}

// Owner is one owned stream for Status.
type Owner struct {
	Stream string `json:"stream"` // vhost/app/stream
	Node   string `json:"node"`
}

// Status is the member's view for /api/v1/cluster: from the registry when
// it answers, else the last sweep (Healthy false).
type Status struct {
	Node     string     `json:"node"`
	URL      string     `json:"url"`
	Healthy  bool       `json:"healthy"`
	Nodes    []NodeInfo `json:"nodes"`
	Owners   []Owner    `json:"owners"`
	Counters Counters   `json:"counters"`
}

// Status sweeps the registry and describes it.
func (m *Member) Status(ctx context.Context) Status {
	m.sweep(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Node: m.cfg.NodeID, URL: m.cfg.URL, Healthy: m.healthy, Counters: m.counters,
		Nodes: slices.Collect(maps.Values(m.nodes)), Owners: []Owner{}}
	slices.SortFunc(st.Nodes, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	for s, id := range m.owners {
		st.Owners = append(st.Owners, Owner{Stream: s.String(), Node: id})
	}
	slices.SortFunc(st.Owners, func(a, b Owner) int { return strings.Compare(a.Stream, b.Stream) })
	return st
}

// NodesSeen is how many live nodes the last sweep saw (this one included).
func (m *Member) NodesSeen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.nodes)
}

// String names the member in logs.
func (m *Member) String() string {
	return fmt.Sprintf("cluster member %s (%s)", m.cfg.NodeID, m.cfg.URL)
}
