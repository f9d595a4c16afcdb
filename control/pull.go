package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/fanout/fanout/fastpath/route"
)

// Pulling streams this node does not have (issue 17's relay, cmd wires
// Config.Pull to control/relay): a WHEP or legacy play of a stream without
// a publisher first calls Config.Pull, which may open a relay from the
// stream's owner as a virtual publisher (virtual.go) before the player's
// answer is built, so the player negotiates against the relayed codecs.
// The relay then asks StreamPlayers whether anyone still plays, and
// reads its players' keyframe requests from VirtualPublisher.KeyframeRequests.

// ErrPull is what a play answers (503) when Config.Pull failed.
var ErrPull = errors.New("stream not available from its owner")

// pull calls Config.Pull for a play of a stream that has no publisher.
func (s *Server) pull(ctx context.Context, vhost, app, stream string) error {
	if s.cfg.Pull == nil {
		return nil
	}
	if s.HasPublisher(vhost, app, stream) {
		return nil
	}
	if err := s.cfg.Pull(ctx, vhost, app, stream); err != nil {
		return fmt.Errorf("%w: %w", ErrPull, err)
	}
	return nil
}

// StreamPlayers is how many players vhost/app/stream has on this node.
func (s *Server) StreamPlayers(vhost, app, stream string) int {
	s.mu.Lock()
	defer s.unlock()
	if st := s.streams[streamKey(vhost, app, stream)]; st != nil {
		return len(st.players)
	}
	return 0
}

// HasPublisher says whether vhost/app/stream has a publisher on this node
// (WebRTC, RTMP or a relay's virtual one).
func (s *Server) HasPublisher(vhost, app, stream string) bool {
	s.mu.Lock()
	defer s.unlock()
	st := s.streams[streamKey(vhost, app, stream)]
	return st != nil && st.publisher != nil
}

// onKeyframe passes a fastpath keyframe request for a virtual publisher
// to its source, dropping it when one is already pending.
func (s *Server) onKeyframe(sid route.SessionID) {
	s.mu.Lock()
	ss := s.sessions[sid]
	s.unlock()
	if ss == nil || ss.keyframes == nil {
		return
	}
	select {
	case ss.keyframes <- struct{}{}:
	default:
	}
}

// KeyframeRequests receives a value when players want a keyframe (their
// PLIs and FIRs and republish joins, coalesced by the fastpath to at most
// one per 300 ms); one request waits while the last is unread.
func (v *VirtualPublisher) KeyframeRequests() <-chan struct{} { return v.ss.keyframes }
