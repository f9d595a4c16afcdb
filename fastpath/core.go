package fastpath

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/udpio"
)

// tickInterval bounds how long a core sleeps in recvmmsg, so it notices a new
// table (a player that needs a keyframe) and Close without traffic.
const tickInterval = 20 * time.Millisecond

// keyframeInterval is the least time between two keyframe requests to one
// publisher: player PLIs and FIRs inside it coalesce into one (SRS keeps one
// per-stream PLI worker for the same reason).
const keyframeInterval = 300 * time.Millisecond

// outTrack is a player's rewrite state for one kind. Sequence numbers and
// timestamps are re-based when the source publisher changes, so a player
// sees one continuous stream across republish.
type outTrack struct {
	src      route.SessionID
	srcEpoch uint32
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   int64 // ns since engine start of the last forwarded packet
	started  bool
}

// sessState is the mutable per-session state a core owns.
type sessState struct {
	id       route.SessionID
	epoch    uint32
	peer     udpio.Sockaddr
	peerAddr [28]byte // cheap equality check for the encoded peer
	rx, tx   *srtp.Context
	out      [route.NumKinds]outTrack
	// publisher only
	lastKeyframeReq int64
	keyframeWanted  bool
}

type core struct {
	e     *Engine
	id    int
	conn  *udpio.Conn
	in    *udpio.Batch
	out   *udpio.Batch
	cnt   counters
	tbl   *route.Table
	sess  []sessState
	now   int64
	hdr   rtp.Header
	rhdr  rtcp.Header
	want  []route.SessionID // publishers with a pending keyframe request
	plain [udpio.MaxDatagram]byte
}

func newCore(e *Engine, id int, conn *udpio.Conn) *core {
	return &core{
		e: e, id: id, conn: conn,
		in:   udpio.NewBatch(e.cfg.Batch),
		out:  udpio.NewBatch(4 * e.cfg.Batch),
		tbl:  route.Empty,
		want: make([]route.SessionID, 0, 64),
	}
}

// run is the core loop: receive a batch, route every datagram, flush.
func (c *core) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for !c.e.stop.Load() {
		err := c.in.Recv(c.conn)
		c.now = int64(time.Since(c.e.started))
		if t := c.e.table.Load(); t != c.tbl {
			c.sync(t)
		}
		if err == nil {
			c.cnt.batches.Add(1)
			for i := 0; i < c.in.N; i++ {
				b, from := c.in.Datagram(i)
				c.handle(b, from)
			}
		} else if !errors.Is(err, udpio.ErrTimeout) && c.e.stop.Load() {
			return
		}
		c.requestKeyframes()
		c.flush()
	}
}

func (c *core) flush() {
	if c.out.N == 0 {
		return
	}
	n := c.out.N
	dropped := c.out.Flush(c.conn)
	c.cnt.txPackets.Add(uint64(n - dropped))
	if dropped > 0 {
		c.cnt.drops[DropSendFailed].Add(uint64(dropped))
	}
}

// handle routes one datagram.
func (c *core) handle(b []byte, from netip.AddrPort) {
	c.cnt.rxPackets.Add(1)
	c.cnt.rxBytes.Add(uint64(len(b)))
	cls := Classify(b)
	if cls == ClassGarbage {
		c.cnt.drops[DropGarbage].Add(1)
		return
	}
	s := c.tbl.Lookup(from)
	if cls == ClassSTUN {
		var sid route.SessionID
		if s != nil {
			sid = s.ID
		}
		c.e.upcall(c, UpSTUN, sid, from, b)
		return
	}
	if s == nil {
		c.cnt.drops[DropUnknownPeer].Add(1)
		return
	}
	if cls == ClassDTLS {
		c.e.upcall(c, UpDTLS, s.ID, from, b)
		return
	}
	st := &c.sess[s.ID]
	if !s.Ready() || st.rx == nil {
		c.cnt.drops[DropNotReady].Add(1)
		return
	}
	if cls == ClassRTCP {
		c.onRTCP(s, st, b)
		return
	}
	c.onRTP(s, st, b)
}

// onRTP decrypts a publisher's packet in place and forwards it to every
// player of the stream.
func (c *core) onRTP(s *route.Session, st *sessState, b []byte) {
	if s.Role != route.RolePublisher {
		c.cnt.drops[DropWrongRole].Add(1)
		return
	}
	plain, err := st.rx.DecryptRTP(b, b, &c.hdr)
	if err != nil {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	kind, ok := trackOf(s, c.hdr.SSRC)
	if !ok {
		c.cnt.drops[DropUnknownSSRC].Add(1)
		return
	}
	if c.hdr.PayloadType != s.Tracks[kind].PT {
		c.cnt.drops[DropPayloadType].Add(1)
		return
	}
	stream := c.tbl.Stream(s.Stream)
	if stream == nil {
		return
	}
	// Strip header extensions once: players negotiated their own (or none),
	// and the publisher's ids mean nothing to them (SRS keeps only TWCC).
	n := stripExtensions(c.plain[:], plain, &c.hdr)
	pkt := c.plain[:n]
	for _, pid := range stream.Players {
		c.forward(pid, kind, pkt, s)
	}
}

func trackOf(s *route.Session, ssrc uint32) (route.Kind, bool) {
	for k := range s.Tracks {
		if s.Tracks[k].SSRC == ssrc && ssrc != 0 {
			return route.Kind(k), true
		}
	}
	return 0, false
}

// stripExtensions copies the RTP packet p into dst without its header
// extension (RFC 3550 §5.3.1) and padding kept as is; it returns the length.
func stripExtensions(dst, p []byte, h *rtp.Header) int {
	fixed := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 == 0 || len(p) < fixed+4 {
		return copy(dst, p)
	}
	extLen := 4 + 4*int(binary.BigEndian.Uint16(p[fixed+2:]))
	if fixed+extLen > len(p) {
		return copy(dst, p)
	}
	copy(dst, p[:fixed])
	dst[0] &^= 0x10
	return fixed + copy(dst[fixed:], p[fixed+extLen:])
}

// forward rewrites pkt for one player and queues it encrypted.
func (c *core) forward(pid route.SessionID, kind route.Kind, pkt []byte, src *route.Session) {
	ps := c.tbl.Session(pid)
	if ps == nil || !ps.Ready() {
		return
	}
	tr := &ps.Tracks[kind]
	pst := &c.sess[pid]
	if tr.SSRC == 0 || pst.tx == nil {
		return
	}
	buf := c.out.Next()
	if buf == nil {
		c.flush()
		buf = c.out.Next()
	}
	n := copy(buf, pkt)
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	ot := &pst.out[kind]
	if !ot.started || ot.src != src.ID || ot.srcEpoch != src.Epoch {
		ot.rebase(seq, ts, c.now, src, tr.ClockRate)
	}
	seq += ot.seqDelta
	ts += ot.tsDelta
	ot.lastSeq, ot.lastTS, ot.lastAt = seq, ts, c.now
	buf[1] = buf[1]&0x80 | tr.PT&0x7f
	binary.BigEndian.PutUint16(buf[2:], seq)
	binary.BigEndian.PutUint32(buf[4:], ts)
	binary.BigEndian.PutUint32(buf[8:], tr.SSRC)
	enc, err := pst.tx.EncryptRTP(buf, buf[:n], &c.hdr)
	if err != nil || len(enc) > len(buf) || &enc[0] != &buf[0] {
		c.cnt.drops[DropSRTP].Add(1)
		return
	}
	c.out.Commit(len(enc), &pst.peer)
	c.cnt.txBytes.Add(uint64(len(enc)))
}

// rebase makes the next forwarded packet follow the last one sent: one
// sequence number later, and a timestamp advanced by the wall time since.
func (o *outTrack) rebase(seq uint16, ts uint32, now int64, src *route.Session, clock uint32) {
	if !o.started {
		o.seqDelta, o.tsDelta = 0, 0
	} else {
		o.seqDelta = o.lastSeq + 1 - seq
		elapsed := uint32(0)
		if clock > 0 && now > o.lastAt {
			elapsed = uint32(uint64(now-o.lastAt) * uint64(clock) / uint64(time.Second))
		}
		if elapsed == 0 {
			elapsed = 1
		}
		o.tsDelta = o.lastTS + elapsed - ts
	}
	o.src, o.srcEpoch, o.started = src.ID, src.Epoch, true
}
