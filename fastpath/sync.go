package fastpath

import (
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/fastpath/bwe"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/srtpx"
)

// sync adopts a newly published table: it creates SRTP contexts for the
// sessions this core owns whose keys arrived, forgets sessions that left,
// re-encodes peers that moved (NAT rebinding), asks a publisher it owns for
// a keyframe when one of its players becomes ready, and rebuilds its view
// of every stream (its own players, the other cores with players). It runs
// only when the table pointer changed; it may allocate.
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
		st.owned = c.e.ownerOf(s) == c.id
		if !st.owned {
			st.rx, st.tx, st.snd = nil, nil, nil
		} else if s.Keys != nil && st.rx == nil {
			c.makeContexts(st, s.Keys)
		}
		if s.Role == route.RolePlayer && s.Keys != nil && !st.kfAsked {
			st.kfAsked = true
			if pub := c.publisherOf(t, s.Stream); pub != nil && c.e.ownerOf(pub) == c.id {
				c.wantKeyframe(t, pub.ID)
			}
		}
		if st.owned && s.Peer.IsValid() {
			var key [18]byte
			a16 := s.Peer.Addr().As16()
			copy(key[:16], a16[:])
			key[16], key[17] = byte(s.Peer.Port()>>8), byte(s.Peer.Port())
			if tcp := route.IsTCPPeer(s.Peer); key != st.peerAddr || tcp != st.tcp {
				st.peerAddr, st.tcp, st.peerAP = key, tcp, s.Peer
				c.conn.EncodeAddr(&st.peer, s.Peer)
			}
		}
	}
	c.syncViews(t)
	c.syncQuality(t)
}

// syncQuality lists the publishers and ready players this core owns,
// creates a new publisher's quality state (asking it for a keyframe when
// the stream already has players: a republish), and starts each newly
// ready player from the GOP cache (player.go).
func (c *core) syncQuality(t *route.Table) {
	c.pubs, c.players = c.pubs[:0], c.players[:0]
	for i := 1; i < len(c.sess); i++ {
		st := &c.sess[i]
		s := t.Session(route.SessionID(i))
		if s == nil || !st.owned || !s.Ready() {
			continue
		}
		switch s.Role {
		case route.RolePublisher:
			if st.pub == nil {
				strm := t.Stream(s.Stream)
				st.pub = newPubState(s, strm != nil && strm.KeyframeCache)
				if strm != nil && len(strm.Players) > 0 {
					c.wantKeyframe(t, s.ID)
				}
			}
			c.pubs = append(c.pubs, s.ID)
		case route.RolePlayer:
			if st.tx == nil {
				continue
			}
			c.players = append(c.players, s.ID)
			if s.TWCCExt != 0 && st.pq.bwe == nil {
				st.pq.bwe = bwe.New() // transport-cc negotiated (playerbwe.go)
			}
			if !st.pq.joined {
				st.pq.joined = true
				c.playerJoined(t, s, st)
			}
		}
	}
}

// syncViews rebuilds the per-stream split of players between cores.
func (c *core) syncViews(t *route.Table) {
	if cap(c.views) < len(t.Streams) {
		grown := make([]streamView, len(t.Streams), len(t.Streams)+len(t.Streams)/2)
		copy(grown, c.views)
		c.views = grown
	}
	c.views = c.views[:len(t.Streams)]
	for i := range c.views {
		v := &c.views[i]
		v.mine, v.remote = v.mine[:0], 0
		st := t.Stream(route.StreamID(i))
		if st == nil {
			continue
		}
		for _, pid := range st.Players {
			ps := t.Session(pid)
			if ps == nil {
				continue
			}
			if o := c.e.ownerOf(ps); o == c.id {
				v.mine = append(v.mine, pid)
			} else {
				v.remote |= 1 << uint(o)
			}
		}
	}
}

func (c *core) publisherOf(t *route.Table, sid route.StreamID) *route.Session {
	st := t.Stream(sid)
	if st == nil || st.Publisher == 0 {
		return nil
	}
	return t.Session(st.Publisher)
}

func (c *core) makeContexts(st *sessState, k *route.Keys) {
	rx, err := srtp.CreateContext(k.RemoteKey, k.RemoteSalt, k.Profile, srtp.SRTPReplayProtection(256))
	if err != nil {
		return
	}
	tx, err := srtp.CreateContext(k.LocalKey, k.LocalSalt, k.Profile)
	if err != nil {
		return
	}
	snd, err := srtpx.NewSender(k.Profile, k.LocalKey, k.LocalSalt)
	if err != nil {
		return
	}
	st.rx, st.tx, st.snd = rx, tx, snd
}

// wantKeyframe marks publisher pid, which this core owns, as owing a keyframe.
func (c *core) wantKeyframe(t *route.Table, pid route.SessionID) {
	if pid == 0 || int(pid) >= len(c.sess) {
		return
	}
	ps := &c.sess[pid]
	if !ps.keyframeWanted {
		ps.keyframeWanted = true
		c.want = append(c.want, pid)
	}
}

// keyframeFor asks the publisher of stream sid for a keyframe, on its
// owner's core.
func (c *core) keyframeFor(sid route.StreamID) {
	pub := c.publisherOf(c.tbl, sid)
	if pub == nil {
		return
	}
	if o := c.e.ownerOf(pub); o != c.id {
		c.push(o, msg{sid: pub.ID, op: opKeyframe})
		return
	}
	c.wantKeyframe(c.tbl, pub.ID)
}
