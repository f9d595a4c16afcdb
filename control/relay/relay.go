package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/fastpath/route"
)

// Defaults of Config.
const (
	DefaultGrace = 10 * time.Second
	// KeyframeInterval is the least time between two PLIs a relay sends
	// upstream (issue 17: aggregated, ≤ 1 per 500 ms per stream).
	KeyframeInterval = 500 * time.Millisecond
	backoffMin       = 100 * time.Millisecond
	backoffMax       = 5 * time.Second
	relocateEvery    = 2 * time.Second // how often a serving relay asks Locate again
)

// HeaderFrom is the request header naming the relaying node (Config.NodeID)
// on an upstream WHEP pull: a full owner sends the pull (307) to the least
// loaded node other than it, which relays in turn, so trees form by
// capacity. It only steers a redirect, so it needs no authentication.
const HeaderFrom = "Fanout-Relay-From"

// Errors.
var (
	// ErrClosed: the Manager is closed.
	ErrClosed = errors.New("relay manager closed")
	// ErrNoMedia: the owner's answer accepted no audio or video track.
	ErrNoMedia = errors.New("owner answered without media")
)

// Locator says which node owns a stream (the cluster registry; declared
// here, its consumer). ok is false when no node owns it.
type Locator interface {
	Locate(ctx context.Context, vhost, app, stream string) (ownerBaseURL string, ok bool, err error)
}

// Host is what a relay needs of its own node: control's virtual
// publishers and player counts, and the fastpath's Inject.
type Host interface {
	OpenVirtual(vhost, app, stream string, audio, video *control.VirtualTrack) (*control.VirtualPublisher, error)
	Players(vhost, app, stream string) int
	// HasPublisher: the stream has a publisher here (a relay's own
	// virtual publisher included).
	HasPublisher(vhost, app, stream string) bool
	Inject(sid route.SessionID, pkt []byte) bool
}

// Config configures a Manager.
type Config struct {
	Locator Locator
	Host    Host
	// Self is this node's base URL as Locator names it: a stream Locator
	// places here is not relayed.
	Self string
	// NodeID names this node in its upstream requests (HeaderFrom), so a
	// full owner redirects the pull to a node other than this one.
	NodeID string
	// BearerToken is sent on upstream WHEP requests (the owner's
	// http_api bearer token), "" for none.
	BearerToken string
	// Grace is how long a relay outlives its last local player; 0 is
	// DefaultGrace.
	Grace  time.Duration
	Logger *slog.Logger
}

// Stats are the Manager's counters (fanout_cluster_relay_* on /metrics).
type Stats struct {
	Open            int    // relays open now
	Opened          uint64 // relays opened
	Reconnects      uint64 // upstream redials after a relay's first connection
	Failures        uint64 // upstream dials that failed
	Bytes, Packets  uint64 // RTP received from upstreams
	InjectDropped   uint64 // packets the local fastpath refused
	KeyframeReqs    uint64 // PLIs sent upstream
	LocateErrors    uint64 // Locator errors
	UpstreamRefused uint64 // WHEP answers other than 201
}

// Info describes one open relay for /api/v1/cluster.
type Info struct {
	Vhost      string    `json:"vhost"`
	App        string    `json:"app"`
	Stream     string    `json:"stream"`
	Upstream   string    `json:"upstream"` // the base URL pulled from (the owner, or the node a full owner sent the pull to), "" while redialling
	Connected  bool      `json:"connected"`
	Since      time.Time `json:"since"`
	Reconnects uint64    `json:"reconnects"`
	Bytes      uint64    `json:"bytes"`
	Packets    uint64    `json:"packets"`
}

// Manager opens and closes relays (one per stream).
type Manager struct {
	cfg Config
	log *slog.Logger
	cnt counters
	api *webrtc.API

	mu     sync.Mutex
	closed bool
	relays map[key]*relay
	wg     sync.WaitGroup
}

type key struct{ vhost, app, stream string }

type counters struct {
	opened, reconnects, failures, bytes, packets, dropped, plis, locateErrs, refused atomic.Uint64
}

// New creates a Manager; Close stops its relays.
func New(cfg Config) (*Manager, error) {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	api, err := newAPI()
	if err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, log: cfg.Logger, api: api, relays: map[key]*relay{}}, nil
}

// Pull is control.Config.Pull: for a stream Locator places on another
// node, it opens the stream's relay unless one is open, and returns once
// the relay's virtual publisher is registered (or ctx ends). It returns
// nil at once for a stream no other node owns, and an error when Locate
// fails or the relay's first dial does.
func (m *Manager) Pull(ctx context.Context, vhost, app, stream string) error {
	k := key{vhost, app, stream}
	m.mu.Lock()
	r := m.relays[k]
	if r != nil {
		r.lastPull = time.Now()
	}
	m.mu.Unlock()
	if r == nil {
		owner, ok, err := m.cfg.Locator.Locate(ctx, vhost, app, stream)
		if err != nil {
			m.cnt.locateErrs.Add(1)
			return fmt.Errorf("locate %s/%s/%s: %w", vhost, app, stream, err)
		}
		if !ok || owner == m.cfg.Self {
			return nil
		}
		if r, err = m.open(k, owner); err != nil {
			return err
		}
	}
	select {
	case <-r.ready:
		return r.firstErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Touch reports whether a relay of the stream is open and, if so, counts
// as a Pull for its grace period (a player that holds no session, such
// as HLS, polling).
func (m *Manager) Touch(vhost, app, stream string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.relays[key{vhost, app, stream}]
	if r != nil {
		r.lastPull = time.Now()
	}
	return r != nil
}

// open registers and starts the relay of k, or returns the one a
// concurrent Pull opened.
func (m *Manager) open(k key, owner string) (*relay, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := time.Now()
	if r := m.relays[k]; r != nil {
		r.lastPull = now
		return r, nil
	}
	r := &relay{m: m, key: k, owner: owner, ready: make(chan struct{}), stop: make(chan struct{}),
		since: now, lastPull: now, log: m.log.With("relay", k.vhost+"/"+k.app+"/"+k.stream)}
	m.relays[k] = r
	m.cnt.opened.Add(1)
	m.wg.Add(1)
	go r.run()
	return r, nil
}

// forget removes r from the map once its goroutine is done with it.
func (m *Manager) forget(r *relay) {
	m.mu.Lock()
	if m.relays[r.key] == r {
		delete(m.relays, r.key)
	}
	m.mu.Unlock()
}

// retire removes r from the map unless a Pull found it within the grace
// period (its player may not be registered yet); true when removed.
func (m *Manager) retire(r *relay) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(r.lastPull) < m.cfg.Grace {
		return false
	}
	if m.relays[r.key] == r {
		delete(m.relays, r.key)
	}
	return true
}

// Close stops every relay and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, r := range m.relays {
		r.stopOnce.Do(func() { close(r.stop) })
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Stats reads the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	open := len(m.relays)
	m.mu.Unlock()
	c := &m.cnt
	return Stats{Open: open, Opened: c.opened.Load(), Reconnects: c.reconnects.Load(), Failures: c.failures.Load(),
		Bytes: c.bytes.Load(), Packets: c.packets.Load(), InjectDropped: c.dropped.Load(),
		KeyframeReqs: c.plis.Load(), LocateErrors: c.locateErrs.Load(), UpstreamRefused: c.refused.Load()}
}

// Relays lists the open relays.
func (m *Manager) Relays() []Info {
	m.mu.Lock()
	rs := make([]*relay, 0, len(m.relays))
	for _, r := range m.relays {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.info())
	}
	return out
}
