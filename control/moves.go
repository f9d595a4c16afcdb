package control

import (
	"net/netip"
	"slices"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// The addresses a session can be bound to. NAT rebinding moves a session
// to a new 5-tuple after a verified binding (RFC 8445 §7.3.1.4), and an
// ICE client checks from each of its candidates at the start, so a session
// may hold several addresses. A peer with the session's credentials could
// otherwise hop across as many addresses as it likes, each a route-table
// entry until the session ends: a new address once the session's DTLS is
// done is a move, at most maxAddrMoves of them per addrMoveWindow
// (sliding; before DTLS, new addresses are the client's candidates being
// checked, however many it has), and a session
// holds at most maxSessionAddrs addresses (a move past it forgets the
// oldest UDP address that is not the current peer). A refused move gets no
// answer and no table entry, and is counted (limit "address_moves"); media
// keeps going to the address bound before it. These are constants, not
// directives: a real client moves a few times a session (a NAT timeout, a
// Wi-Fi/cellular handover).
const (
	maxAddrMoves    = 4
	addrMoveWindow  = 10 * time.Second
	maxSessionAddrs = 8
)

// LimitAddressMoves is the limit label of a refused move.
const LimitAddressMoves = "address_moves"

// addrMoves is a session's recent moves: a ring of their times (unix ns).
type addrMoves struct {
	at   [maxAddrMoves]int64
	next int
}

// allow records a move at now when fewer than maxAddrMoves happened in
// the window before it.
func (m *addrMoves) allow(now int64) bool {
	oldest := m.at[m.next]
	if oldest != 0 && now-oldest < int64(addrMoveWindow) {
		return false
	}
	m.at[m.next] = now
	m.next = (m.next + 1) % maxAddrMoves
	return true
}

// addAddrLocked binds a new verified address to ss, or refuses it (false)
// over the move rate or when no address can make room.
func (s *Server) addAddrLocked(ss *session, from netip.AddrPort) bool {
	if len(ss.addrs) > 0 {
		// Before DTLS is done a new address is an ICE check from another
		// candidate, which only the address bound limits; after it, a move.
		moved := ss.keys != nil
		if len(ss.addrs) >= maxSessionAddrs && !s.forgetOldestLocked(ss) || moved && !ss.moves.allow(time.Now().UnixNano()) {
			s.counts.AddrMovesRefused++
			return false
		}
	}
	ss.addrs = append(ss.addrs, from)
	s.byAddr[from] = ss
	s.peerLocked(from, true)
	return true
}

// forgetOldestLocked drops ss's oldest UDP address other than its peer
// (a TCP one is its connection, which closes on its own); false when there
// is none.
func (s *Server) forgetOldestLocked(ss *session) bool {
	i := slices.IndexFunc(ss.addrs, func(a netip.AddrPort) bool { return a != ss.peer && !route.IsTCPPeer(a) })
	if i < 0 {
		return false
	}
	a := ss.addrs[i]
	ss.addrs = slices.Delete(ss.addrs, i, i+1)
	if s.byAddr[a] == ss {
		delete(s.byAddr, a)
		s.peerLocked(a, false)
	}
	return true
}
