package fastpath

import (
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/fastpath/route"
)

// sync adopts a newly published table: it creates SRTP contexts for
// sessions whose keys arrived, drops state of sessions that left, re-encodes
// peers that moved (NAT rebinding), and asks publishers for a keyframe when a
// player becomes ready. It runs only when the table pointer changed.
func (c *core) sync(t *route.Table) {
	c.tbl = t
	if len(c.sess) < len(t.Sessions) {
		grown := make([]sessState, len(t.Sessions)+len(t.Sessions)/2)
		copy(grown, c.sess)
		c.sess = grown
	}
	for i := 1; i < len(c.sess); i++ {
		st := &c.sess[i]
		s := t.Session(route.SessionID(i))
		if s == nil {
			if st.id != 0 {
				*st = sessState{}
			}
			continue
		}
		if st.id != s.ID || st.epoch != s.Epoch {
			*st = sessState{id: s.ID, epoch: s.Epoch}
		}
		if s.Keys != nil && st.rx == nil {
			if !c.makeContexts(st, s.Keys) {
				continue
			}
			if s.Role == route.RolePlayer {
				c.wantKeyframe(t, s.Stream)
			}
		}
		if s.Peer.IsValid() {
			ap := s.Peer.Addr().As16()
			var key [28]byte
			copy(key[:16], ap[:])
			key[16], key[17] = byte(s.Peer.Port()>>8), byte(s.Peer.Port())
			if key != st.peerAddr {
				st.peerAddr = key
				c.conn.EncodeAddr(&st.peer, s.Peer)
			}
		}
	}
}

func (c *core) makeContexts(st *sessState, k *route.Keys) bool {
	rx, err := srtp.CreateContext(k.RemoteKey, k.RemoteSalt, k.Profile, srtp.SRTPReplayProtection(256))
	if err != nil {
		return false
	}
	tx, err := srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile)
	if err != nil {
		return false
	}
	st.rx, st.tx = rx, tx
	return true
}

// wantKeyframe marks the publisher of stream as owing a keyframe.
func (c *core) wantKeyframe(t *route.Table, sid route.StreamID) {
	st := t.Stream(sid)
	if st == nil || st.Publisher == 0 {
		return
	}
	ps := &c.sess[st.Publisher]
	if !ps.keyframeWanted {
		ps.keyframeWanted = true
		c.want = append(c.want, st.Publisher)
	}
}
