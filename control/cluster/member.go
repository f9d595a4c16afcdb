package cluster

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultTTL is the lifetime of node and owner keys; a dead node's
// streams can be republished elsewhere after at most this long.
const DefaultTTL = 10 * time.Second

// MemberConfig describes this node to the registry.
type MemberConfig struct {
	NodeID     string
	URL        string // base URL other nodes and redirected clients reach this node's HTTP API at
	MaxPlayers int    // 0 = unlimited; reported, and Full compares Load().Players with it
	// TTL of this node's keys, default DefaultTTL; heartbeats every TTL/3.
	TTL time.Duration
	// Load reports this node's load for each heartbeat; nil reports zero.
	Load   func() Load
	Logger *slog.Logger
}

// Counters are a Member's totals, for /metrics.
type Counters struct {
	Errors    uint64 // registry calls that failed
	Claims    uint64 // streams claimed (won)
	Conflicts uint64 // claims lost to another node
	Releases  uint64 // streams released
	Rebuilds  uint64 // times the keys were rebuilt after an outage
}

// Member is this node in the cluster: it heartbeats, holds the claims of
// the streams published here, and watches the others.
type Member struct {
	reg Registry
	cfg MemberConfig
	log *slog.Logger

	mu       sync.Mutex
	owned    map[Stream]struct{} // streams whose publisher is on this node
	lost     map[Stream]struct{} // owned streams another node held when claimed
	nodes    map[string]NodeInfo // live nodes at the last sweep
	owners   map[Stream]string   // owners at the last sweep or event
	healthy  bool
	started  bool
	counters Counters
	watchers map[int]func(Event)
	nextW    int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewMember returns this node's agent on reg; Start runs it.
func NewMember(reg Registry, cfg MemberConfig) *Member {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Member{reg: reg, cfg: cfg, log: cfg.Logger.With("part", "cluster", "node", cfg.NodeID),
		owned: map[Stream]struct{}{}, lost: map[Stream]struct{}{}, nodes: map[string]NodeInfo{}, owners: map[Stream]string{},
		watchers: map[int]func(Event){}}
}

// ID is this node's id.
func (m *Member) ID() string { return m.cfg.NodeID }

// URL is this node's advertised base URL.
func (m *Member) URL() string { return m.cfg.URL }

// Start heartbeats once (so a healthy registry lists this node when Start
// returns) and starts the heartbeat and event goroutines.
func (m *Member) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	events := m.reg.Subscribe(ctx)
	m.round(ctx)
	m.wg.Add(2)
	go m.loop(ctx)
	go func() {
		defer m.wg.Done()
		for e := range events {
			m.apply(e)
		}
	}()
}

// Close stops the goroutines, releases this node's streams and leaves.
func (m *Member) Close() {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.wg.Wait()
	m.cancel = nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.mu.Lock()
	owned := make([]Stream, 0, len(m.owned))
	for s := range m.owned {
		if _, lost := m.lost[s]; !lost {
			owned = append(owned, s)
		}
	}
	clear(m.owned)
	clear(m.lost)
	m.mu.Unlock()
	for _, s := range owned {
		if err := m.reg.Release(ctx, s, m.cfg.NodeID); err != nil {
			m.noteErr(err)
			break
		}
	}
	m.noteErr(m.reg.Leave(ctx, m.cfg.NodeID))
}

func (m *Member) loop(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.round(ctx)
		}
	}
}

// self is this node's heartbeat value.
func (m *Member) self() NodeInfo {
	n := NodeInfo{ID: m.cfg.NodeID, URL: m.cfg.URL, MaxPlayers: m.cfg.MaxPlayers}
	if m.cfg.Load != nil {
		n.Load = m.cfg.Load()
	}
	return n
}

// round is one heartbeat: the node key, every owned stream's key
// (refreshed, or claimed again when Redis lost it or another node held
// it), then the sweep.
func (m *Member) round(ctx context.Context) {
	if m.noteErr(m.reg.Heartbeat(ctx, m.self(), m.cfg.TTL)) {
		return
	}
	m.mu.Lock()
	owned := slices.Collect(maps.Keys(m.owned))
	m.mu.Unlock()
	for _, s := range owned {
		held, err := m.reg.Refresh(ctx, s, m.cfg.NodeID, m.cfg.TTL)
		if m.noteErr(err) {
			return
		}
		if !held {
			if _, err := m.Claim(ctx, s); err != nil {
				return
			}
		}
	}
	m.sweep(ctx)
}

// noteErr counts a failed registry call and tracks health: the first
// failure is logged, and the first success after it counts a rebuild (the
// round that follows re-claims the owned streams). It reports err != nil.
func (m *Member) noteErr(err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.counters.Errors++
		if m.healthy || !m.started {
			m.log.Warn("cluster registry unavailable; serving what this node has", "err", err)
		}
		m.healthy, m.started = false, true
		return true
	}
	if !m.healthy && m.started {
		m.counters.Rebuilds++
		m.log.Info("cluster registry back; rebuilding this node's keys", "streams", len(m.owned))
	}
	m.healthy, m.started = true, true
	return false
}

// Healthy says the last registry call succeeded.
func (m *Member) Healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.healthy
}

// Counters returns the totals so far.
func (m *Member) Counters() Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters
}
