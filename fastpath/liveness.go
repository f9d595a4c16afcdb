package fastpath

import (
	"time"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/stunx"
)

// Liveness (issue 15): every packet that authenticates stamps its
// session's route.Session.Seen on the core that handled it, which control's
// stun_timeout sweep (and so consent) reads: no upcall per packet.

// seenEvery is the least time between two stores of one session's
// last-seen stamp (route.Session.Seen) by one core: media decrypts on every
// packet, and a store per packet would bounce the stamp's cache line
// between the core and control's sweeper for nothing (stun_timeout is
// seconds).
const seenEvery = int64(250 * time.Millisecond)

// keepalive takes a well-formed Binding Indication (RFC 8489 §6.3.2: what
// libnice sends every 25 s once connected) from one of s's addresses as a
// sign of life, and reports whether it did. Indications carry no
// MESSAGE-INTEGRITY; the 5-tuple is the proof: the table holds an address
// only after a binding request from it carried the session's credentials,
// so a forger must be on the path or guess both ports, and even then it
// can only keep a session alive towards that same, once-authenticated
// address (media never moves on an indication: no redirection, no
// amplification). A FINGERPRINT, when present, must be right (stunx).
func (c *core) keepalive(s *route.Session, b []byte) bool {
	if !stunx.IsIndication(b) {
		return false
	}
	c.alive(s, &c.sess[s.ID])
	c.cnt.stunIndications.Add(1)
	return true
}

// alive stamps s as heard from now: a STUN indication from its address, or
// SRTP or SRTCP that decrypted with its keys. Control's stun_timeout sweep
// reads the stamp; at most one store per session, core and seenEvery.
func (c *core) alive(s *route.Session, st *sessState) {
	if s.Seen == nil || (st.seenAt != 0 && c.now-st.seenAt < seenEvery) {
		return
	}
	st.seenAt = c.now
	s.Seen.Store(c.wallBase + c.now)
}
