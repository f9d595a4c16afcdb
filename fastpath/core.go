package fastpath

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/nack"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/srtpx"
	"github.com/fanout/fanout/fastpath/stunx"
	"github.com/fanout/fanout/fastpath/udpio"
	"github.com/fanout/fanout/fastpath/xskio"
)

// Ingress, receive → deliver: each core loop (run) reads a batch with
// recvmmsg, sorts every datagram (RFC 7983), answers consent refreshes,
// hands control what it must see, passes media of another core's session
// to its owner, decrypts a publisher's RTP once (onRTP) and delivers it:
// publisher bookkeeping, then one reference per core with players (deliver,
// queue). The round ends in finish, which takes the other cores' ring work
// and the inbox, and sends (send.go).

// tickInterval bounds how long an idle core sleeps, so it runs keyframe
// timers without traffic.
const tickInterval = 20 * time.Millisecond

// keyframeInterval is the least time between two keyframe requests to one
// publisher: player PLIs and FIRs inside it coalesce into one (SRS keeps one
// per-stream PLI worker for the same reason).
const keyframeInterval = 300 * time.Millisecond

// ringBurst bounds the messages a core takes from one ring per round, so a
// hot peer cannot starve its own socket.
const ringBurst = 256

// sessState is what a core keeps per session slot. Every core tracks every
// slot's id and epoch; only the owner has SRTP contexts and rewrite state.
type sessState struct {
	id       route.SessionID
	epoch    uint32
	owned    bool
	kfAsked  bool // player: its publisher's owner asked a keyframe for it
	peer     udpio.Sockaddr
	peerAddr [18]byte       // cheap equality check for the encoded peer
	tcp      bool           // the peer is a TCP connection (pseudo-address)
	peerAP   netip.AddrPort // the peer, for the TCP transport
	rx, tx   *srtp.Context  // SRTP in, and SRTCP out
	snd      *srtpx.Sender  // SRTP out (RTP)
	out      [route.NumKinds]outTrack
	// publisher only
	lastKeyframeReq int64
	keyframeWanted  bool
	plisSent        uint64
	pub             *pubState // quality state of a publisher I own (publisher.go)
	// player only
	pq  playerQ  // quality state of a player I own (player.go)
	lay layerSel // the simulcast layer it follows (layers.go)
	// far: on its publisher's core, the GOP replay to a player of another
	// core (replayfar.go)
	far farReplay
	// any session: answers its consent refreshes on this core (answerSTUN)
	stun stunx.Responder
	// seenAt is c.now when this core last stored the session's Seen (alive)
	seenAt int64
}

// streamView is one core's share of a stream: the players it owns and the
// other cores that own some.
type streamView struct {
	mine   []route.SessionID
	remote uint64 // bit i: core i owns players of the stream
	// sr is the publisher's last SR per kind, for my players' SRs (player.go)
	sr [route.NumKinds]streamSR
	// lsr is a simulcast publisher's last SR per layer (layers.go)
	lsr [route.MaxLayers]streamSR
	// rates are the stream's layer rates as fanned out here (playerbwe.go)
	rates layerRates
}

type core struct {
	e        *Engine
	id       int
	cpu      int
	conn     *udpio.Conn
	in       *udpio.Batch
	out      *udpio.Out
	xsk      *xskio.Port // AF_XDP mode: this core's RX queue socket, else nil (xsk.go)
	waker    *udpio.Waker
	slab     *slab
	cnt      counters
	tbl      *route.Table
	sess     []sessState
	views    []streamView
	now      int64
	hdr      rtp.Header
	rhdr     rtcp.Header
	want     []route.SessionID // publishers with a pending keyframe request
	pend     []*pkt            // plaintext to send to my players this round
	wakeMask uint64            // peers given ring work this round
	tcpDirty bool              // TCP frames were written this round
	sleeping atomic.Bool
	// frameOpen: the last video packet handled did not end its frame (awaitFrame)
	frameOpen bool
	stunTo    udpio.Sockaddr // scratch: where answerSTUN replies
	pinErr    error
	tid       atomic.Int32 // the loop's OS thread, once it runs
	// lc accumulates the per-packet counters during a round; publish
	// adds them to cnt once per round (an atomic add per packet costs a
	// locked instruction and a contended cache line when read).
	lc struct{ rxPackets, rxBytes, txBytes uint64 }
	// quality (publisher.go, player.go, qstats.go)
	pubs, players                 []route.SessionID // publishers and ready players I own
	far                           []route.SessionID // other cores' players with a replay here (replayfar.go)
	seqs                          []uint16          // scratch: NACKed sequence numbers
	nextTick, nextSlow, nextBoard int64
	wallBase                      int64 // Unix ns at the engine's clock zero
	qb                            qualityBoard
}

func newCore(e *Engine, id, cpu int, conn *udpio.Conn, gso bool) (*core, error) {
	w, err := udpio.NewWaker()
	if err != nil {
		return nil, err
	}
	n := len(e.conns)
	return &core{
		e: e, id: id, cpu: cpu, conn: conn, waker: w,
		in:   udpio.NewBatch(e.cfg.Batch),
		out:  udpio.NewOut(4*e.cfg.Batch, 4*e.cfg.Batch*1280, gso),
		slab: newSlab(id, e.cfg.SlabPackets),
		tbl:  route.Empty,
		want: make([]route.SessionID, 0, 64),
		pend: make([]*pkt, 0, 4*e.cfg.Batch+ringBurst*(n-1)), // awaitFrame may add batches to a round
		seqs: make([]uint16, 0, nack.MaxMissing),
		far:  make([]route.SessionID, 0, 64),

		wallBase: e.started.UnixNano(),
	}, nil
}

// run is the core loop: receive what is queued, route it, take the other
// cores' ring work, send for my players, then sleep if there was nothing.
func (c *core) run() {
	runtime.LockOSThread() // never unlocked: the pinned thread exits with the loop
	c.pinErr = udpio.PinThread(c.cpu)
	c.tid.Store(int32(unix.Gettid()))
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0) // 1 µs: FrameWait's timeouts are tens of µs
	for !c.e.stop.Load() {
		err := c.in.TryRecv(c.conn)
		c.begin()
		got := 0
		if err == nil {
			got = c.handleBatch()
		}
		got += c.recvXSK() // AF_XDP mode: session media (xsk.go)
		if got > 0 && c.frameOpen && c.e.cfg.FrameWait > 0 {
			got += c.awaitFrame()
		}
		if c.finish() == 0 && got == 0 {
			c.sleep()
		}
	}
}

// handleBatch routes the datagrams TryRecv just received.
func (c *core) handleBatch() int {
	c.cnt.batches.Add(1)
	for i := 0; i < c.in.N; i++ {
		b, from := c.in.Datagram(i)
		c.handle(b, from)
	}
	return c.in.N
}

// awaitFrame keeps receiving, for at most FrameWait, while the last video
// packet handled left its frame open (marker bit clear): the rest of the
// frame is usually a few microseconds behind, and fanning the frame out
// whole lets each player's packets go out as one GSO send.
func (c *core) awaitFrame() int {
	got := 0
	deadline := c.now + int64(c.e.cfg.FrameWait)
	for c.frameOpen {
		left := deadline - int64(time.Since(c.e.started))
		if left <= 0 {
			c.cnt.frameWaitExpired.Add(1)
			break
		}
		if c.in.TryRecv(c.conn) == nil {
			got += c.handleBatch()
			continue
		}
		if k := c.recvXSK(); k > 0 {
			got += k
			continue
		}
		c.waker.Wait(c.conn, time.Duration(left)) // block, not spin: the publisher may share this CPU
	}
	c.frameOpen = false
	return got
}

// begin starts a round: read the clock and load the table once.
func (c *core) begin() {
	c.now = int64(time.Since(c.e.started))
	c.frameOpen = false // only this round's packets open a frame wait (not a bridge injection)
	if t := c.e.table.Load(); t != c.tbl {
		c.sync(t)
	}
	if c.out.GSO() && c.e.gsoOff.Load() {
		c.out.SetGSO(false)
	}
}

// finish ends a round; it returns how many ring messages it took.
func (c *core) finish() int {
	n := c.drainRings() + c.drainInbox()
	c.scatter()
	c.requestKeyframes()
	c.runTimers()
	c.flush()
	c.wakePeers()
	c.drainReturns()
	c.publishCounters()
	return n
}

// publishCounters moves the round's per-packet counts to the shared counters.
func (c *core) publishCounters() {
	if c.lc.rxPackets != 0 {
		c.cnt.rxPackets.Add(c.lc.rxPackets)
		c.cnt.rxBytes.Add(c.lc.rxBytes)
	}
	if c.lc.txBytes != 0 {
		c.cnt.txBytes.Add(c.lc.txBytes)
	}
	c.lc.rxPackets, c.lc.rxBytes, c.lc.txBytes = 0, 0, 0
}

// sleep blocks until a datagram, a wake-up or the tick.
func (c *core) sleep() {
	if d := c.e.cfg.WakeTimeout; d > 0 {
		c.waker.Wait(c.conn, d)
		return
	}
	c.sleeping.Store(true)
	if c.ringWork() || c.e.stop.Load() {
		c.sleeping.Store(false)
		return
	}
	c.cnt.sleeps.Add(1)
	c.waker.Wait(c.conn, tickInterval)
	c.sleeping.Store(false)
}

// handle routes one received datagram.
func (c *core) handle(b []byte, from netip.AddrPort) {
	c.lc.rxPackets++
	c.lc.rxBytes += uint64(len(b))
	cls := Classify(b)
	if cls == ClassGarbage {
		c.cnt.drops[DropGarbage].Add(1)
		return
	}
	s := c.tbl.Lookup(from)
	if cls == ClassSTUN {
		if s != nil && (c.answerSTUN(s, b, from) || c.keepalive(s, b)) {
			return
		}
		var sid route.SessionID
		if s != nil {
			sid = s.ID
		}
		c.e.upcall(c, route.UpSTUN, sid, from, b)
		return
	}
	if s == nil {
		c.cnt.drops[DropUnknownPeer].Add(1)
		return
	}
	if cls == ClassDTLS {
		c.e.upcall(c, route.UpDTLS, s.ID, from, b)
		return
	}
	if owner := c.e.ownerOf(s); owner != c.id {
		c.handoff(s, owner, b)
		return
	}
	c.handleOwned(s, b, cls)
}

// answerSTUN answers a consent refresh (RFC 7675) from s's current UDP
// address on this core, and reports whether it did. Control answers the rest:
// the first binding from an address, a moved peer, TCP, every binding of a
// session still joining (no keys yet: control echoes those answers and
// follows them with checks of its own, control/upcall.go), and every
// request that fails here (it counts the rejection).
func (c *core) answerSTUN(s *route.Session, b []byte, from netip.AddrPort) bool {
	if s.Seen == nil || s.ICEUsername == "" || s.Peer != from || route.IsTCPPeer(from) || s.Keys == nil {
		return false
	}
	st := &c.sess[s.ID]
	if st.stun.Key() != s.ICEKey {
		st.stun.SetKey(s.ICEKey) // once per session and core
	}
	buf := c.outBuf()
	n, err := st.stun.Answer(buf, b, s.ICEUsername, from)
	if err != nil {
		return false
	}
	c.conn.EncodeAddr(&c.stunTo, from)
	c.out.Commit(n, &c.stunTo, uint64(s.ID)<<32|uint64(s.Epoch))
	s.Seen.Store(c.wallBase + c.now)
	c.cnt.stunAnswered.Add(1)
	return true
}

// handoff passes a media datagram to the core that owns its session (the
// kernel hashed the 5-tuple here: no BPF, or a NAT rebinding).
func (c *core) handoff(s *route.Session, owner int, b []byte) {
	p := c.getPkt()
	if p == nil {
		return
	}
	p.n = copy(p.buf[:], b)
	p.src, p.srcEpoch = s.ID, s.Epoch
	if !c.push(owner, msg{p: p, op: opIngress}) {
		c.release(p)
		return
	}
	c.cnt.handoffs.Add(1)
}

// onHandoff handles a datagram another core received for a session of mine.
func (c *core) onHandoff(p *pkt) {
	if s := c.tbl.Session(p.src); s == nil {
		c.cnt.drops[DropUnknownPeer].Add(1)
	} else {
		c.handleOwned(s, p.data(), Classify(p.data()))
	}
	c.release(p)
}

// handleOwned handles SRTP or SRTCP of a session this core owns.
func (c *core) handleOwned(s *route.Session, b []byte, cls Class) {
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

// onRTP decrypts a publisher's packet in place, once, into a slab buffer
// that this core's players and every other core with players share.
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
	c.alive(s, st)
	if st.pub != nil {
		c.recordTransport(s, st.pub, plain)
	}
	kind, ok := trackOf(s, c.hdr.SSRC)
	var layer uint8
	if !ok && st.pub != nil && st.pub.sim != nil {
		kind = route.KindVideo
		layer, ok = c.layerOf(s, st.pub.sim) // simulcast: by RID, then SSRC (layers.go)
	}
	if !ok {
		c.cnt.drops[DropUnknownSSRC].Add(1)
		return
	}
	if c.hdr.PayloadType != s.Tracks[kind].PT {
		c.cnt.drops[DropPayloadType].Add(1)
		return
	}
	c.deliverLayer(s, st, kind, layer, plain)
}

// deliver runs the publisher bookkeeping (tap, NACK, RR stats, history,
// GOP cache) for one plaintext RTP packet of publisher s and fans it out;
// c.hdr holds its parsed header. Packets decrypted from the socket and
// packets a virtual publisher injects (inbox.go) both end here.
func (c *core) deliver(s *route.Session, st *sessState, kind route.Kind, plain []byte) {
	c.deliverLayer(s, st, kind, 0, plain)
}

// deliverLayer is deliver for a packet of a simulcast layer (0 otherwise):
// only the highest layer goes to the tap (RTC→RTMP/HLS).
func (c *core) deliverLayer(s *route.Session, st *sessState, kind route.Kind, layer uint8, plain []byte) {
	if layer == 0 {
		c.tapRTP(s, kind, plain) // rtc_to_rtmp (tap.go)
	}
	v := c.view(s.Stream)
	fan := v != nil && (len(v.mine) != 0 || v.remote != 0)
	if !fan && st.pub == nil {
		return
	}
	p := c.getPkt()
	if p == nil {
		return
	}
	// Strip header extensions once: players negotiated their own (or none),
	// and the publisher's ids mean nothing to them (SRS keeps only TWCC).
	// An AV1 video packet keeps its dependency descriptor (svcav1.go).
	if kind == route.KindVideo && s.DDExt != 0 {
		p.n = keepExtension(p.buf[:], plain, s.DDExt, s.DDExt)
	} else {
		p.n = stripExtensions(p.buf[:], plain)
	}
	p.stream, p.src, p.srcEpoch, p.kind = s.Stream, s.ID, s.Epoch, kind
	if kind == route.KindVideo {
		p.layer, p.layers = layer, s.Simulcast.N
		p.tid, p.tstart = c.temporalOf(s, layer, p.data()) // VP9 and AV1 SVC (svc.go)
		c.frameOpen = !c.hdr.Marker
	}
	if st.pub != nil {
		c.notePublished(s, st.pub, kind, layer, len(plain), p.data()) // NACK, RR stats, history, GOP (publisher.go)
	}
	if !fan {
		c.release(p)
		return
	}
	for m := v.remote; m != 0; m &= m - 1 {
		p.retain()
		if !c.push(bits.TrailingZeros64(m), msg{p: p, op: opFanout}) {
			p.refs.Add(-1)
		}
	}
	if len(v.mine) == 0 {
		c.release(p)
		return
	}
	c.queue(p)
}

// queue holds p (and its reference) until this round's scatter.
func (c *core) queue(p *pkt) {
	if len(c.pend) == cap(c.pend) {
		c.scatter()
	}
	c.pend = append(c.pend, p)
}

func (c *core) view(id route.StreamID) *streamView {
	if id == 0 || int(id) >= len(c.views) {
		return nil
	}
	return &c.views[id]
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
func stripExtensions(dst, p []byte) int {
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
