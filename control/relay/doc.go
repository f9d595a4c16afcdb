// Package relay pulls a stream this node does not own from the node that
// does (issue 17's edge): one upstream flow per stream, however many local
// players, fed into this node's own fastpath as a virtual publisher
// (control.OpenVirtual, the door rtmp_to_rtc uses), so the edge's players
// are served exactly as a local publisher's are: NACKs answered from the
// edge's own history, first frames from the edge's own keyframe cache,
// their PLIs coalesced by the fastpath (300 ms) and sent upstream at most
// once per 500 ms per stream (KeyframeInterval).
//
// Transport: a WebRTC WHEP pull with pion/webrtc, the edge as an ordinary
// WHEP player of the owner. Against plain SRTP/RTP over one authenticated
// 5-tuple per stream it wins on: NAT and firewall traversal (ICE; the
// owner is ICE-lite on its one media port, the edge needs no open port);
// no second protocol on the owner: its existing WHEP endpoint, bearer
// token, hooks, session accounting, keyframe cache and NACK history serve
// the relay like any player, and a relaying edge serves WHEP in turn, so
// edges feed edges (A → B → C) with nothing new; NACK, PLI and RTCP
// reports come with the standard stack, keyed by DTLS-SRTP per flow. The
// cost is one DTLS handshake per relay and one SRTP decrypt (pion, in
// Go) per relayed packet on the edge, plus the owner's encrypt, which it
// pays for any player: per stream, not per player, so it vanishes beside
// the edge's fan-out.
//
// No separate relay listener (issue 17's relay_listen was removed):
// edges pull through the owner's ordinary WHEP endpoint on its HTTP API,
// so a pull passes the same bearer token, hooks, session accounting and
// placement as a player. Placement on purpose: an owner at max_players
// with `redirect on` sends a pull (307, followed here with the token
// kept) to the least loaded node other than the asking one (HeaderFrom),
// which relays in turn, so trees form by capacity and a hot stream's
// edges cannot pile onto its owner without bound. A listener that
// bypassed the limits would lose that, and be one more port per node to
// open and secure for nothing a bearer token does not give.
//
// Lifecycle: Manager.Pull (control.Config.Pull) opens a relay on the
// first local play of a stream that Locator places on another node and
// waits until its virtual publisher is registered; later plays find it.
// RTMP, HTTP-FLV and HLS players open or share it the same way (cmd wires
// the bridge hub's Config.Want to Pull; Touch keeps it open for HLS
// players, who poll and hold nothing; Host.Players counts the bridge's).
// The relay closes Grace after the last local player left. An upstream
// that fails (ICE failed, DTLS closed, WHEP refused) is redialled with
// backoff (100 ms doubling to 5 s) after a fresh Locate, under a new
// virtual publisher, so local players stay connected and see a gap, then
// a keyframe (the owner's keyframe cache), with sequence numbers and
// timestamps kept continuous by the fastpath's republish rebasing. A
// serving relay asks Locate again every 2 s and moves when another node
// is named. While no other node owns the stream the relay waits (its
// players too); it ends when the stream is published on this node. A
// Locator error keeps the last owner: a registry outage stops nothing.
//
// Not guarded: a Locator that names nodes in a cycle (B pulls from C
// pulls from B) makes the first plays wait out their request contexts.
//
// Who imports it: cmd (the node wires a Locator, control and the
// fastpath). It imports control for the virtual publisher's types and
// pion/webrtc (this package only, .golangci.yml).
//
// Concurrency: the Manager's mutex guards its relay map; each relay is
// owned by one goroutine (run) that dials, serves and redials it, plus one
// reader goroutine per upstream track, all stopped and waited for by
// Close.
package relay
