// Package cluster is Fanout's stream registry across nodes: which nodes
// are alive and how loaded, and which node owns (holds the publisher of)
// each stream. It owns the Registry interface, its Redis implementation
// (NewRedis, go-redis v9), an in-memory one for the unit tests
// (memory_test.go), and Member, the node-side agent that keeps this node's keys alive,
// claims and releases its streams, rebuilds its keys after a Redis outage,
// turns pub/sub messages and expiries into Events, and answers placement
// questions (Locate, LeastLoaded, Full).
//
// Who imports it: cmd (cmd/internal/node), which maps conf.Cluster onto
// MemberConfig, hooks publishers to Claim/Release and adapts Member to the
// consumers' interfaces (httpapi.Placement, the relay's locator). It imports
// no other Fanout package.
//
// # Key layout (Redis; the prefix is "fanout:")
//
//	fanout:node:{id}                   JSON NodeInfo {id, url, players, egress_pps, cpu, max_players}
//	                                   SET … PX ttl by each heartbeat (every ttl/3)
//	fanout:stream:{vhost}/{app}/{stream}  the owner's node id
//	                                   claimed with SET NX PX ttl; refreshed (PEXPIRE) and
//	                                   released (DEL) by Lua scripts that first check the
//	                                   value is the caller's id, so only the owner does either
//	fanout:events                      pub/sub channel of JSON Events: stream_up on a won
//	                                   claim, stream_down on a release, node_down on a
//	                                   clean leave
//
// TTLs: MemberConfig.TTL (default 10 s) for both key kinds; the member
// heartbeats and refreshes every TTL/3, so one lost round does not expire
// anything.
//
// # Faults
//
//   - A node dies: its node key and its stream keys expire within one TTL;
//     every member's sweep (each TTL/3) sees them gone and emits node_down
//     and stream_down locally; a republish on any node then wins the claim.
//   - A publisher moves: the old owner releases on unpublish (stream_down);
//     the new one claims (stream_up).
//   - A publisher comes to a node while another still holds the claim
//     (a dead owner's key not yet expired): the conflict is counted once
//     and the claim is tried again each round until it is won or the
//     publisher leaves.
//   - Redis down: nothing local stops. Every registry call fails; the member
//     counts each error, reports Healthy() false, and callers refuse
//     cross-node operations (Locate and LeastLoaded return ErrUnavailable;
//     cmd answers 503 with Retry-After). Streams published meanwhile are
//     remembered as owned.
//   - Redis back (restarted, empty): the next heartbeat succeeds, and the
//     same round re-claims every stream this node holds (the refresh finds
//     the key missing and claims it again), so the registry is whole within
//     one TTL/3 round; go-redis resubscribes the pub/sub channel by itself.
//     A claim lost to another node meanwhile is logged and counted
//     (Counters.Conflicts); the local publisher keeps playing.
//
// Concurrency: Registry implementations are safe for concurrent use. A
// Member runs one goroutine (heartbeat, refresh, sweep) and one that reads
// pub/sub; both stop and are waited for in Close. Its methods are safe for
// concurrent use; its mutex is never held across a registry call, and
// Watch callbacks run on those goroutines without it.
package cluster
