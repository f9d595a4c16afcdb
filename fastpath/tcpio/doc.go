// Package tcpio is Fanout's ICE-TCP transport: passive TCP candidates (RFC 6544)
// carrying STUN, DTLS, SRTP and SRTCP in RFC 4571 framing (each packet prefixed
// with its 2-byte big-endian length), as SRS does for "WebRTC over TCP"
// (rtc_server.tcp, SRS #2852).
//
// # What it owns
//
// The TCP listener (or connections handed over from a shared HTTP port), the
// framing in both directions, the per-connection output buffers and the table
// from peer pseudo-address to connection. It does not know sessions: every
// frame goes to a [Sink] (the fastpath engine), which runs the same demux as
// for UDP (RFC 7983). Closing a connection whose first STUN request names no
// session, or a second connection for one session, is control's decision,
// carried out through [Server.CloseConn].
//
// Rules enforced here: the first complete frame must be a STUN Binding Request
// (ICE-TCP opens with a connectivity check; SRS rejects anything else), a
// length of 0 or above [Config.MaxFrame] (default 1500, SRS) closes the
// connection, a connection's pending output is bounded (a slow peer loses
// packets, counted, and never stalls the fastpath), and one source IP may
// hold at most [Config.MaxConnsPerIP] connections (counted per IP at accept
// and close only, under a mutex that no frame path takes).
//
// # Who imports it
//
// cmd wires it: it builds the [Server], gives it the fastpath engine as its
// [Sink], and, in one-port mode, passes the shared listener through [Sniff]
// before handing the rest to net/http. The fastpath core calls Write and Flush
// through a small interface it declares itself; this package imports
// fastpath/route (the pseudo-address) and neither fastpath nor control.
//
// # Why gnet, and why under fastpath
//
// Thousands of players over TCP would otherwise cost a goroutine, a stack and
// a runtime poller wake-up per connection. gnet runs a few epoll loops (one per
// CPU by default) that own all connections, buffer partial frames inside its
// ring buffers, and let us parse frames in place (Peek/Discard) without copying
// or allocating (DESIGN.md's shape: "TCP :8000 (RFC 4571, gnet event loops)").
// It is the fastpath's second I/O package beside fastpath/udpio: the cores
// write SRTP to it per packet and flush it once a round, so it obeys the
// fastpath's rules (no allocation per packet, no logging, bounded queues).
// It is the one fastpath package that may import gnet (the depguard rule
// "fastpath-tcpio" in .golangci.yml); the rest of the fastpath may not.
//
// # Pseudo-addresses
//
// Inside Fanout a TCP peer is the netip.AddrPort returned by route.TCPPeer:
// its remote address as IPv6 (v4-mapped when needed) with the zone "tcp".
// Route tables keyed by netip.AddrPort therefore never confuse a TCP peer
// with a UDP peer of the same ip:port, and route.IsTCPPeer tells the
// fastpath which transport sends a packet.
//
// # Concurrency
//
// Sink methods run on the gnet loop goroutines (one connection is always served
// by the same loop, so its frames arrive in order). Write, Flush, CloseConn and
// Stats are safe from any goroutine. Write appends to a per-connection buffer
// under a small per-connection mutex and never makes a syscall; Flush schedules
// at most one task per event loop, and that task, on the loop goroutine, swaps
// each dirty connection's buffer and writes it with one write(2).
package tcpio
