package node

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/cluster"
	"github.com/fanout/fanout/control/httpapi"
	"github.com/fanout/fanout/control/relay"
)

// The cluster wiring (cluster { enabled on; }): clusterLink runs this
// node's cluster.Member on the Redis registry, claims a stream when its
// publisher is ready here (WebRTC through control's Events, RTMP through
// rtmp_to_rtc's virtual publisher) and releases it when the publisher
// goes, and is httpapi's Placement: WHIP to a stream another live node
// owns answers 409, or 307 to the owner with `redirect on`; WHEP or legacy
// play to a full node (`max_players`) answers 307 to the least loaded
// other node with `redirect on`, else 503; a relay's pull (relay.HeaderFrom)
// is never sent back to the edge that asks.
//
// Redis down: what this node has keeps playing (local publishers, open
// relays, new players of either); a play that would need a new relay
// answers 503 with Retry-After (Locate cannot name the owner), and so
// does every WHIP. Accepting a WHIP then was weighed and refused: the
// node cannot tell a stream nobody owns from one published elsewhere, so
// accepting risks two owners of one name, and when Redis returns the
// loser's claim is refused and its publisher plays only to its own node
// while edges relay the other (a split no client sees). Refusing is safe
// and short: WHIP clients retry on 503 + Retry-After, and a WHIP is
// placed again as soon as Redis answers.
// Without a cluster block none of this exists: control gets the bridge's
// Events and no Placement, as before.

// clusterLink adapts control/cluster to control and the HTTP layer.
type clusterLink struct {
	s        *Server
	member   atomic.Pointer[cluster.Member] // nil until the API is bound
	redirect bool

	// Claims and releases run in order on one goroutine, so that Events
	// callers never wait for Redis.
	mu      sync.Mutex
	ops     []clusterOp
	wake    chan struct{}
	stopped bool
	done    chan struct{}

	redirects [2]atomic.Uint64 // publish, play
	relays    atomic.Pointer[func() any]

	cpu loadSampler
}

type clusterOp struct {
	claim bool
	s     cluster.Stream
}

func newClusterLink(s *Server) *clusterLink {
	return &clusterLink{s: s, redirect: s.cfg.Cluster.Redirect, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// startCluster connects to Redis and joins; the API must be bound (the
// default advertised URL is its address).
func (s *Server) startCluster() error {
	c := s.cfg.Cluster
	reg, err := cluster.NewRedis(c.Redis, s.log.With("part", "cluster"))
	if err != nil {
		return err
	}
	ttl := c.TTL
	if s.opts.ClusterTTL > 0 {
		ttl = s.opts.ClusterTTL
	}
	m := cluster.NewMember(reg, cluster.MemberConfig{NodeID: s.nodeID(), URL: s.advertise(), MaxPlayers: c.MaxPlayers,
		TTL: ttl, Load: s.clink.load, Logger: s.log})
	m.Start()
	s.clink.member.Store(m)
	go s.clink.run(m)
	s.closers = append(s.closers, func() {
		s.clink.stop()
		m.Close()
		_ = reg.Close()
	})
	s.log.Info("cluster", "node", m.ID(), "url", m.URL(), "healthy", m.Healthy(), "redirect", c.Redirect,
		"max_players", c.MaxPlayers)
	return nil
}

// nodeID is cluster.node_id, else the host name and the API port.
func (s *Server) nodeID() string {
	if id := s.cfg.Cluster.NodeID; id != "" {
		return id
	}
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, host)
	return host + "-" + strconv.Itoa(int(s.APIAddr().Port()))
}

// advertise is cluster.advertise, else http:// and the bound API address
// (the host name when it is a wildcard).
func (s *Server) advertise() string {
	if a := s.cfg.Cluster.Advertise; a != "" {
		return a
	}
	a := s.APIAddr()
	if a.Addr().IsUnspecified() {
		host, _ := os.Hostname()
		s.log.Warn("cluster: the API listens on a wildcard; advertising the host name, set cluster.advertise", "host", host)
		return fmt.Sprintf("http://%s:%d", host, a.Port())
	}
	return "http://" + netip.AddrPortFrom(a.Addr(), a.Port()).String()
}

// PublisherReady implements control.Events: claim the stream.
func (c *clusterLink) PublisherReady(p control.PublisherInfo) {
	c.enqueue(clusterOp{claim: true, s: cluster.Stream{Vhost: p.Vhost, App: p.App, Name: p.Stream}})
}

// PublisherGone implements control.Events: release it.
func (c *clusterLink) PublisherGone(p control.PublisherInfo) {
	c.enqueue(clusterOp{s: cluster.Stream{Vhost: p.Vhost, App: p.App, Name: p.Stream}})
}

func (c *clusterLink) enqueue(op clusterOp) {
	c.mu.Lock()
	if !c.stopped {
		c.ops = append(c.ops, op)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run applies claims and releases in order until stop.
func (c *clusterLink) run(m *cluster.Member) {
	defer close(c.done)
	for range c.wake {
		c.mu.Lock()
		ops, stopped := c.ops, c.stopped
		c.ops = nil
		c.mu.Unlock()
		for _, op := range ops {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if op.claim {
				_, _ = m.Claim(ctx, op.s) // conflicts and outages are logged and counted by the member
			} else {
				_ = m.Release(ctx, op.s)
			}
			cancel()
		}
		if stopped {
			return
		}
	}
}

// stop ends run after the queued operations.
func (c *clusterLink) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
}

// Place implements httpapi.Placement (see the comment at the top).
func (c *clusterLink) Place(ctx context.Context, o httpapi.Offer) (string, error) {
	m := c.member.Load()
	if m == nil {
		return "", nil
	}
	if o.Play {
		from, _ := ctx.Value(relayFromKey{}).(string)
		return c.placePlay(ctx, m, from)
	}
	owner, ok, err := m.Lookup(ctx, cluster.Stream{Vhost: o.Vhost, App: o.App, Name: o.Stream})
	switch {
	case err != nil:
		return "", httpapi.Errorf(http.StatusServiceUnavailable, "cannot check the stream's owner: %v", err)
	case !ok || owner.ID == m.ID():
		return "", nil
	case c.redirect:
		c.redirects[0].Add(1)
		return owner.URL, nil
	}
	return "", &httpapi.Error{Status: http.StatusConflict, Code: http.StatusConflict,
		Err: fmt.Errorf("stream /%s/%s is published on node %s (%s)", o.App, o.Stream, owner.ID, owner.URL)}
}

// placePlay answers a play on a full node. from is the relaying node
// that asks (relay.HeaderFrom), "" for a player: a full owner sends a
// relay's pull to another node, which relays in turn (a tree), never back
// to the asking one.
func (c *clusterLink) placePlay(ctx context.Context, m *cluster.Member, from string) (string, error) {
	if !m.Full() {
		return "", nil
	}
	if !c.redirect {
		return "", httpapi.Errorf(http.StatusServiceUnavailable, "node %s is full (cluster.max_players)", m.ID())
	}
	n, ok, err := m.LeastLoaded(ctx, from)
	switch {
	case err != nil:
		return "", httpapi.Errorf(http.StatusServiceUnavailable, "node %s is full and the cluster cannot be asked: %v", m.ID(), err)
	case !ok:
		return "", httpapi.Errorf(http.StatusServiceUnavailable, "every node is full")
	}
	c.redirects[1].Add(1)
	return n.URL, nil
}

// relayFromKey is the request context key of relay.HeaderFrom's value.
type relayFromKey struct{}

// relayFrom hands a relay pull's HeaderFrom to Place through the context.
func relayFrom(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if from := r.Header.Get(relay.HeaderFrom); from != "" {
			r = r.WithContext(context.WithValue(r.Context(), relayFromKey{}, from))
		}
		h.ServeHTTP(w, r)
	})
}

// status is /api/v1/cluster's data.
func (c *clusterLink) status(ctx context.Context) (any, error) {
	m := c.member.Load()
	if m == nil {
		return nil, httpapi.Errorf(http.StatusServiceUnavailable, "cluster is starting")
	}
	st := m.Status(ctx)
	out := map[string]any{"node": st.Node, "url": st.URL, "healthy": st.Healthy, "nodes": st.Nodes,
		"owners": st.Owners, "counters": st.Counters, "redirect": c.redirect,
		"redirects": map[string]uint64{"publish": c.redirects[0].Load(), "play": c.redirects[1].Load()},
		"relays":    []any{}}
	if fn := c.relays.Load(); fn != nil {
		out["relays"] = (*fn)()
	}
	return out, nil
}

// SetClusterRelays makes fn's value the "relays" of /api/v1/cluster (the
// node-to-node relays this node runs); no-op without a cluster.
func (s *Server) SetClusterRelays(fn func() any) {
	if s.clink != nil {
		s.clink.relays.Store(&fn)
	}
}

// ClusterMember is this node's cluster member (Locate, Watch for the
// relay), nil without a cluster block.
func (s *Server) ClusterMember() *cluster.Member {
	if s.clink == nil {
		return nil
	}
	return s.clink.member.Load()
}

// load is what each heartbeat reports, and what Full reads on each WHEP
// offer: WebRTC players (now), egress packets per second and process CPU
// in cores (over the last second or more).
func (c *clusterLink) load() cluster.Load {
	pps, cpu := c.cpu.sample(c.s.fp.Stats().TxPackets)
	return cluster.Load{Players: c.s.ctl.Players(), EgressPPS: pps, CPU: cpu}
}

// loadSampler turns counters into rates over windows of at least a
// second; asked sooner, it returns the last rates.
type loadSampler struct {
	mu       sync.Mutex
	at       time.Time
	tx       uint64
	cpuDur   time.Duration
	pps, cpu float64
}

func (l *loadSampler) sample(tx uint64) (pps, cpu float64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	dt := now.Sub(l.at).Seconds()
	if !l.at.IsZero() && dt < 1 {
		return l.pps, l.cpu
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if !l.at.IsZero() {
		l.pps, l.cpu = float64(tx-l.tx)/dt, (used-l.cpuDur).Seconds()/dt
	}
	l.at, l.tx, l.cpuDur = now, tx, used
	return l.pps, l.cpu
}

// teeEvents hands control's publisher events to the bridge and the cluster.
type teeEvents []control.Events

func (t teeEvents) PublisherReady(p control.PublisherInfo) {
	for _, e := range t {
		e.PublisherReady(p)
	}
}

func (t teeEvents) PublisherGone(p control.PublisherInfo) {
	for _, e := range t {
		e.PublisherGone(p)
	}
}
