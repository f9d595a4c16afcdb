package control

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/fanout/fanout/control/ice"
	"github.com/fanout/fanout/fastpath/route"
)

// readUpcalls is the goroutine that takes STUN, DTLS and TCP-close
// upcalls from the fastpath's ring.
func (s *Server) readUpcalls() {
	defer s.wg.Done()
	up := s.fp.Upcalls()
	for {
		select {
		case <-s.stop:
			return
		case u := <-up:
			switch u.Kind {
			case route.UpSTUN:
				s.onSTUN(u.From, u.Data)
			case route.UpDTLS:
				s.onDTLS(u.Session, u.From, u.Data)
			case route.UpTCPClosed:
				s.onTCPClosed(u.From)
			case route.UpKeyframe:
				s.onKeyframe(u.Session)
			}
			s.fp.Release(u)
		}
	}
}

// onSTUN answers a Binding Request after verifying it (package ice), and
// records its source as a valid address of the session; the latest source
// becomes the send address (RFC 8445 §7.3.1.4 for a lite agent; NAT
// rebinding). The first binding starts DTLS.
func (s *Server) onSTUN(from netip.AddrPort, b []byte) {
	req, err := ice.Parse(b)
	if errors.Is(err, ice.ErrResponse) {
		return // the answer to ice.Check
	}
	if err != nil {
		s.reject(from)
		return
	}
	ss, dup := s.stunSession(req.LocalUfrag, req.RemoteUfrag, from)
	switch {
	case ss == nil:
		s.reject(from)
		return
	case dup:
		// SRS: one TCP connection per session (srs-reference §3.5).
		s.closeTCP(from, true)
		return
	}
	if err := req.Verify(ss.localPwd); err != nil {
		s.reject(from)
		ss.log.Debug("stun rejected", "from", from, "err", err)
		return
	}
	resp, err := req.Response(from, ss.localPwd)
	if err != nil {
		return
	}
	bd, ok := s.bind(ss, from, resp, req.UseCand)
	if !ok { // over the session's address moves (moves.go): no answer
		s.closeTCP(from, false)
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	if !bd.held {
		// pubMu: after any table in flight, which may carry this address.
		s.pubMu.Lock()
		_ = s.fp.WriteTo(resp, from)
		if bd.check != nil {
			_ = s.fp.WriteTo(bd.check, from)
		}
		s.pubMu.Unlock()
	}
	if bd.echo {
		time.AfterFunc(echoDelay, func() { s.echo(ss, from, resp, bd.check) })
	}
	if bd.start {
		go s.runDTLS(ss)
	}
}

// The binding answers control gives while a session joins (until its
// DTLS is done) go out twice (echoDelay apart), over UDP: a lost answer,
// or a lost check of Fanout's, costs a controlling peer a pacing tick
// (pion: 200 ms) and often two, where the copy costs one datagram of ~100
// bytes to a peer that proved it holds the session's ice-pwd. The cores
// send every binding of a joining session up here (fastpath core.go
// answerSTUN), and answer the consent checks themselves once it has keys.
// maxJoinAnswers bounds the echoes (and timers) and checks of one session.
const (
	echoDelay      = 20 * time.Millisecond
	maxJoinAnswers = 10
)

// echo sends an answer (and the check that went with it) again, unless
// the session ended or its address is pending (its held answers go with
// the table) or moved on.
func (s *Server) echo(ss *session, to netip.AddrPort, resp, check []byte) {
	s.mu.Lock()
	ok := !ss.ended && !ss.addrPending && ss.peer == to
	s.mu.Unlock()
	if !ok {
		return
	}
	s.pubMu.Lock()
	_ = s.fp.WriteTo(resp, to)
	if check != nil {
		_ = s.fp.WriteTo(check, to)
	}
	s.pubMu.Unlock()
}

// binding is what bind decided for one verified Binding Request.
type binding struct {
	held  bool   // the answer waits for the table with its address (Server.replies)
	start bool   // the session's DTLS goroutine is due
	check []byte // a Binding Request of Fanout's own to follow the answer (iceCheck)
	echo  bool   // send answer and check again after echoDelay
}

// stunSession finds the live session a binding names; dup reports a second
// TCP connection for it.
func (s *Server) stunSession(local, remote string, from netip.AddrPort) (ss *session, dup bool) {
	s.mu.Lock()
	defer s.unlock()
	ss = s.byUfrag[local]
	if ss == nil || ss.ended || (ss.remoteUfrag != "" && remote != ss.remoteUfrag) {
		return nil, false
	}
	return ss, route.IsTCPPeer(from) && hasOtherTCP(ss.addrs, from)
}

// bind records a verified binding from `from`; useCand: it carries
// USE-CANDIDATE. The client starts DTLS when it gets the answer, and the
// cores drop DTLS from addresses their table does not know: an answer to
// a new address is held (b.held) until the table with the address is out
// (unlock sends it), and so are the answers to its retransmissions
// meanwhile. While the session joins, each answer but the one to a
// nomination (useCand) is followed by a check of Fanout's own (iceCheck),
// and both are echoed (echoDelay). ok is false when a new address is over
// the session's moves (moves.go).
func (s *Server) bind(ss *session, from netip.AddrPort, resp []byte, useCand bool) (b binding, ok bool) {
	s.mu.Lock()
	defer s.unlock()
	changed := false
	if !slices.Contains(ss.addrs, from) {
		if !s.addAddrLocked(ss, from) {
			return binding{}, false
		}
		changed = true
	}
	s.counts.STUNBindings++
	if ss.peer != from {
		ss.peer = from
		changed = true
	}
	b.start = !ss.started && !ss.ended
	if b.start {
		ss.started = true
		s.wg.Add(1)
	}
	if ss.keys == nil && !route.IsTCPPeer(from) && ss.joinAnswers < maxJoinAnswers { // joining: DTLS not done
		ss.joinAnswers++
		b.echo = true
		if !useCand {
			b.check = iceCheck(ss, from)
		}
	}
	if changed {
		ss.addrPending = true
	}
	if !ss.addrPending {
		return b, true
	}
	// Queued, the answer goes with the table (unlock): held even when
	// changedLocked builds that table at once and clears addrPending (it
	// was then answered twice).
	b.held = true
	s.replies = append(s.replies, stunReply{ss: ss, b: resp, to: from})
	if b.check != nil {
		s.replies = append(s.replies, stunReply{ss: ss, b: b.check, to: from})
	}
	if changed {
		s.changedLocked(ss)
	}
	return b, true
}

// iceCheck is a Binding Request of Fanout's own to a session's peer, sent
// after an answer to its check while it joins (ice.Check says why), over
// UDP only: over TCP the peer's checks are not lost.
func iceCheck(ss *session, from netip.AddrPort) []byte {
	if ss.remoteUfrag == "" || ss.remotePwd == "" || route.IsTCPPeer(from) {
		return nil
	}
	b, err := ice.Check(ss.remoteUfrag, ss.localUfrag, ss.remotePwd, rand.Uint64())
	if err != nil {
		return nil
	}
	return b
}

// stunReply is a binding answer waiting for its address to be published.
type stunReply struct {
	ss *session
	b  []byte
	to netip.AddrPort
}

// reject counts a refused STUN request and closes its TCP connection.
func (s *Server) reject(from netip.AddrPort) {
	s.mu.Lock()
	s.counts.STUNRejected++
	s.unlock()
	s.closeTCP(from, false)
}

// quality reads the fastpath's media counters of a session, if it has them.
func (s *Server) quality(id route.SessionID) (route.SessionQuality, bool) {
	qs, ok := s.fp.(interface {
		SessionQuality(route.SessionID) (route.SessionQuality, bool)
	})
	if !ok {
		return route.SessionQuality{}, false
	}
	return qs.SessionQuality(id)
}

// bytesOf sums a session's media bytes: received from a publisher, sent
// to a player.
func (s *Server) bytesOf(id route.SessionID) uint64 {
	q, _ := s.quality(id)
	var n uint64
	for _, t := range q.Tracks {
		n += t.Bytes
	}
	return n
}

func transportOf(peer netip.AddrPort) string {
	switch {
	case !peer.IsValid():
		return "none"
	case route.IsTCPPeer(peer):
		return "tcp"
	}
	return "udp"
}

// closeTCP closes a TCP peer's connection (no-op for UDP peers).
func (s *Server) closeTCP(from netip.AddrPort, dup bool) {
	if route.IsTCPPeer(from) && s.cfg.CloseTCP != nil {
		s.cfg.CloseTCP(from, dup)
	}
}

func hasOtherTCP(as []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range as {
		if x != a && route.IsTCPPeer(x) {
			return true
		}
	}
	return false
}

// onTCPClosed forgets a closed TCP connection; a session that was sending
// over it ends (SRS ends the session when its TCP connection closes).
func (s *Server) onTCPClosed(from netip.AddrPort) {
	s.mu.Lock()
	ss := s.byAddr[from]
	if ss == nil {
		s.unlock()
		return
	}
	delete(s.byAddr, from)
	if i := slices.Index(ss.addrs, from); i >= 0 {
		ss.addrs = slices.Delete(ss.addrs, i, i+1)
	}
	current := ss.peer == from
	s.changedLocked(ss)
	s.unlock()
	if current {
		s.end(ss, "tcp connection closed")
	}
}

// onDTLS hands a DTLS record to its session's association.
func (s *Server) onDTLS(sid route.SessionID, from netip.AddrPort, b []byte) {
	s.mu.Lock()
	ss := s.sessions[sid]
	if ss == nil {
		ss = s.byAddr[from]
	}
	s.unlock()
	if ss == nil || ss.transport == nil {
		return
	}
	ss.lastSeen.Store(time.Now().UnixNano())
	s.feedDTLS(ss, from, b)
}

// feedDTLS is where DTLS records enter pion/dtls: the one place to check
// them first.
func (s *Server) feedDTLS(ss *session, from netip.AddrPort, b []byte) {
	if !s.checkDTLS(ss, from, b) {
		return
	}
	if !ss.transport.deliver(b) {
		s.dtlsQueueDrops.Add(1) // DTLS retransmits
	}
}

// sweep ends sessions silent for longer than their vhost's stun_timeout
// (SRS sweeps every 5 s; once a second keeps the bound tight). Silent means
// nothing authenticated came: lastSeen moves on every binding, DTLS record,
// binding indication from a bound address, SRTP and SRTCP that decrypts
// (route.Session.Seen), so a stack that keeps alive with indications or
// RTCP is never cut.
//
// The same window is consent (RFC 7675 §5.1, as far as an ICE-lite server
// applies it): a player from which nothing authenticated came for
// stun_timeout (30 s, RFC 7675's consent timeout too) is ended, and so gets
// no more media. One knob, not a separate consent_timeout: the two would
// coincide, and a session without consent has nothing left to do. Media
// only ever goes to Session.Peer, set by a binding whose MESSAGE-INTEGRITY
// verified (onSTUN), never by a packet's source alone.
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			for _, ss := range s.silent(now) {
				s.end(ss, "stun timeout")
			}
		}
	}
}

// silent lists the sessions past their stun_timeout.
func (s *Server) silent(now time.Time) []*session {
	s.mu.Lock()
	defer s.unlock()
	var dead []*session
	for _, ss := range s.sessions {
		if ss.virtual {
			continue // no STUN; it ends with its RTMP stream
		}
		to := s.cfg.Vhost(ss.stream.vhost).STUNTimeout
		if to > 0 && now.UnixNano()-ss.lastSeen.Load() > int64(to) {
			dead = append(dead, ss)
		}
	}
	return dead
}
