package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable wraps every registry failure (Redis down, timeout): the
// caller should refuse cross-node operations with 503 and Retry-After.
var ErrUnavailable = errors.New("cluster registry unavailable")

// Stream names a stream cluster-wide.
type Stream struct{ Vhost, App, Name string }

func (s Stream) String() string { return s.Vhost + "/" + s.App + "/" + s.Name }

// Load is what a node reports of itself in each heartbeat.
type Load struct {
	Players   int     `json:"players"`    // live WebRTC players
	EgressPPS float64 `json:"egress_pps"` // media packets sent per second
	CPU       float64 `json:"cpu"`        // process CPU, in cores (1.0 = one core busy)
}

// NodeInfo is a live node as its heartbeat describes it.
type NodeInfo struct {
	ID  string `json:"id"`
	URL string `json:"url"` // base URL of its HTTP API (WHIP/WHEP), no path
	Load
	MaxPlayers int `json:"max_players"` // 0 = unlimited
}

// Full says the node is at or over its player capacity.
func (n NodeInfo) Full() bool { return n.MaxPlayers > 0 && n.Players >= n.MaxPlayers }

// EventKind says what changed.
type EventKind string

// The events a Member reports to its watchers.
const (
	StreamUp   EventKind = "stream_up"   // Node now owns Stream
	StreamDown EventKind = "stream_down" // Stream has no owner (released or expired)
	NodeDown   EventKind = "node_down"   // Node left or its heartbeat expired
)

// Event is one change in the registry.
type Event struct {
	Kind   EventKind `json:"kind"`
	Node   string    `json:"node"`
	Stream Stream    `json:"stream"`
}

// Registry is the shared store. Every error wraps ErrUnavailable.
type Registry interface {
	// Heartbeat writes n's node key with a TTL.
	Heartbeat(ctx context.Context, n NodeInfo, ttl time.Duration) error
	// Leave deletes node id's key and announces NodeDown.
	Leave(ctx context.Context, id string) error
	// Nodes lists the live nodes.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// Claim makes node the owner of s unless another node is (SET NX PX),
	// announcing StreamUp when it wins. owner is who owns s afterwards.
	Claim(ctx context.Context, s Stream, node string, ttl time.Duration) (owner string, err error)
	// Refresh extends s's TTL if node owns it; held is false otherwise.
	Refresh(ctx context.Context, s Stream, node string, ttl time.Duration) (held bool, err error)
	// Release deletes s's key if node owns it, announcing StreamDown.
	Release(ctx context.Context, s Stream, node string) error
	// Owner returns s's owner.
	Owner(ctx context.Context, s Stream) (node string, ok bool, err error)
	// Owners lists every owned stream.
	Owners(ctx context.Context) (map[Stream]string, error)
	// Subscribe delivers announced events until ctx ends, then closes the
	// channel. A slow reader loses events (the sweep repairs them).
	Subscribe(ctx context.Context) <-chan Event
	Close() error
}

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
