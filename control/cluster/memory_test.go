package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errDown is what a Memory registry set down answers (tests of outages).
var errDown = errors.New("memory registry is down")

// Memory is a Registry in one process: for a single node, and for unit
// tests, where several Members share one to stand for several nodes.
type Memory struct {
	now func() time.Time

	mu     sync.Mutex
	down   bool
	nodes  map[string]memNode
	owners map[Stream]memOwner
	subs   map[chan Event]struct{}
}

type memNode struct {
	info    NodeInfo
	expires time.Time
}

type memOwner struct {
	node    string
	expires time.Time
}

// NewMemory returns an empty in-memory registry; now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, nodes: map[string]memNode{}, owners: map[Stream]memOwner{}, subs: map[chan Event]struct{}{}}
}

// SetDown makes every call fail (down) or work again; going down loses
// every key, as a Redis restart without persistence does.
func (m *Memory) SetDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
	if down {
		clear(m.nodes)
		clear(m.owners)
	}
}

// lock takes mu and drops expired keys; it fails while down.
func (m *Memory) lock(op string) error {
	m.mu.Lock()
	if m.down {
		m.mu.Unlock()
		return unavailable(op, errDown)
	}
	now := m.now()
	for id, n := range m.nodes {
		if !now.Before(n.expires) {
			delete(m.nodes, id)
		}
	}
	for s, o := range m.owners {
		if !now.Before(o.expires) {
			delete(m.owners, s)
		}
	}
	return nil
}

// publishLocked hands e to every subscriber that has room.
func (m *Memory) publishLocked(e Event) {
	for ch := range m.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (m *Memory) Heartbeat(_ context.Context, n NodeInfo, ttl time.Duration) error {
	if err := m.lock("heartbeat"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.nodes[n.ID] = memNode{info: n, expires: m.now().Add(ttl)}
	return nil
}

func (m *Memory) Leave(_ context.Context, id string) error {
	if err := m.lock("leave"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.nodes, id)
	m.publishLocked(Event{Kind: NodeDown, Node: id})
	return nil
}

func (m *Memory) Nodes(context.Context) ([]NodeInfo, error) {
	if err := m.lock("nodes"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make([]NodeInfo, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n.info)
	}
	return out, nil
}

func (m *Memory) Claim(_ context.Context, s Stream, node string, ttl time.Duration) (string, error) {
	if err := m.lock("claim"); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	if o, ok := m.owners[s]; ok {
		return o.node, nil
	}
	m.owners[s] = memOwner{node: node, expires: m.now().Add(ttl)}
	m.publishLocked(Event{Kind: StreamUp, Node: node, Stream: s})
	return node, nil
}

func (m *Memory) Refresh(_ context.Context, s Stream, node string, ttl time.Duration) (bool, error) {
	if err := m.lock("refresh"); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	if o, ok := m.owners[s]; !ok || o.node != node {
		return false, nil
	}
	m.owners[s] = memOwner{node: node, expires: m.now().Add(ttl)}
	return true, nil
}

func (m *Memory) Release(_ context.Context, s Stream, node string) error {
	if err := m.lock("release"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if o, ok := m.owners[s]; ok && o.node == node {
		delete(m.owners, s)
		m.publishLocked(Event{Kind: StreamDown, Node: node, Stream: s})
	}
	return nil
}

func (m *Memory) Owner(_ context.Context, s Stream) (string, bool, error) {
	if err := m.lock("owner"); err != nil {
		return "", false, err
	}
	defer m.mu.Unlock()
	o, ok := m.owners[s]
	return o.node, ok, nil
}

func (m *Memory) Owners(context.Context) (map[Stream]string, error) {
	if err := m.lock("owners"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	out := make(map[Stream]string, len(m.owners))
	for s, o := range m.owners {
		out[s] = o.node
	}
	return out, nil
}

func (m *Memory) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 64)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer func() {
			m.mu.Lock()
			delete(m.subs, ch)
			m.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-ch:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// Close does nothing: a Memory holds no connection.
func (m *Memory) Close() error { return nil }
