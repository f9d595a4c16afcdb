package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// Reader counters, published once per batch.
const (
	ctrRTP        = iota // RTP packets received (all subscribers)
	ctrBytes             // RTP bytes received
	ctrExpected          // RTP packets expected from sequence numbers
	ctrGaps              // sequence gaps
	ctrLate              // out of order or duplicates
	ctrRTCP              // RTCP packets
	ctrSTUN              // STUN messages
	ctrDTLS              // DTLS records
	ctrVerified          // SRTP packets authenticated and decrypted
	ctrAuthFail          // SRTP packets that failed authentication
	ctrNoKey             // SRTP packets before keys were ready
	ctrStamps            // latency stamps seen
	ctrOther             // unclassified datagrams
	ctrSyscalls          // recvmmsg calls
	ctrNACKs             // NACK packets sent
	ctrKeepalive         // STUN keepalives sent
	ctrPollSleeps        // -rx-poll: rounds that found nothing and slept
	nCounters
)

// stampMagic marks a payload carrying a send time at stampOffset.
const (
	stampMagic  = 0x46414e4f55544253 // "FANOUTBS"
	stampOffset = 2
	stampLen    = 16
)

// clockEpoch is the single clock of a bench process: publisher stamps and
// subscriber arrivals are both monotonic nanoseconds since it.
var clockEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(clockEpoch)) }

// Keepalives. Each subscriber sends a STUN binding request every
// keepaliveEvery. They are spread, not synchronised: the first one falls at a
// random point of the first interval and each later one keepaliveEvery ±
// keepaliveJitter after the previous, so subscribers that fell due together
// (connected together, or all overdue after a loop round that stalled in a
// connect storm) drift apart again instead of staying in step. A sweep sends
// at most maxKeepalivesPerSweep and leaves the rest due for the next, so even
// after a stall the server never gets thousands of binding requests in one
// burst (it lost the same last-in-slot-order ones every interval). The loop
// sweeps at the end of a round once sweepEvery has passed since the last
// sweep; a round that keeps up lasts at most 50 ms (the epoll_wait timeout),
// so a reader can send 256 per 10–50 ms, at least 5120/s, where 3000
// subscribers need 1500/s.
const (
	keepaliveEvery        = 2 * time.Second
	keepaliveJitter       = keepaliveEvery / 10
	maxKeepalivesPerSweep = 256
	sweepEvery            = 10 * time.Millisecond
)

// jitterEvery is how often the loop publishes the mean video jitter.
const jitterEvery = 200 * time.Millisecond

// firstKeepalive returns when a subscriber that just got past ICE at now
// sends its first keepalive: at a random point of [now, now+keepaliveEvery).
// rnd returns a uniform value in [0, n).
func firstKeepalive(now int64, rnd func(n int64) int64) int64 {
	return now + rnd(int64(keepaliveEvery))
}

// nextKeepalive returns when the keepalive after one sent at now is due:
// keepaliveEvery ± keepaliveJitter later.
func nextKeepalive(now int64, rnd func(n int64) int64) int64 {
	return now + int64(keepaliveEvery-keepaliveJitter) + rnd(int64(2*keepaliveJitter)+1)
}

// reader is one receive loop: an epoll set over many subscriber sockets,
// drained with recvmmsg. Its goroutine owns the reader-owned fields of its
// subscribers and their sockets; with -sink it is also the one that
// switches them to the sink (toSink).
type reader struct {
	ep          *epoll
	slots       []atomic.Pointer[subscriber]
	nslots      atomic.Int32
	inSet       atomic.Int32 // sockets in the epoll set (not yet sunk)
	batch       *mmsgBatch
	dec         []byte
	hdr         rtp.Header
	c           [nCounters]uint64
	pub         [nCounters]atomic.Uint64
	lat         hist
	verifyEvery uint64
	nack        bool
	cpus        []int
	stop        atomic.Bool
	tid         atomic.Int32
	done        chan struct{}
	lastSweep   int64
	lastJitter  int64
	rnd         func(n int64) int64 // keepalive spread: uniform in [0, n)
	jitterBits  atomic.Uint64       // float64 ms, mean video jitter
	poll        unix.Timespec       // -rx-poll: sleep between empty rounds; zero = block in epoll_wait
	polling     bool
	sink        *sink                 // -sink: the filter subscribers switch to; nil reads everything
	node        int                   // the node (WHEP URL) of its subscribers: its sink counters
	sinkErr     atomic.Pointer[error] // the first failed switch; the loop then switches no more
}

// readerConfig is what a reader needs from the run's Config.
type readerConfig struct {
	capacity    int           // subscriber slots
	verifyEvery int           // authenticate 1 SRTP packet in verifyEvery
	nack        bool          // send NACKs on gaps
	cpus        []int         // pin the loop's thread here
	poll        time.Duration // -rx-poll; 0 = block in epoll_wait
	sink        *sink         // -sink: switch each subscriber to it once it is done with user space
	node        int           // the node whose subscribers it reads (-whep URL,URL…)
}

func newReader(rc readerConfig) (*reader, error) {
	ep, err := newEpoll(256)
	if err != nil {
		return nil, err
	}
	return &reader{
		ep:          ep,
		slots:       make([]atomic.Pointer[subscriber], rc.capacity),
		batch:       newBatch(batchSize, maxDatagram),
		dec:         make([]byte, 0, maxDatagram+64),
		verifyEvery: uint64(max(rc.verifyEvery, 1)),
		nack:        rc.nack,
		cpus:        rc.cpus,
		done:        make(chan struct{}),
		rnd:         rand.Int64N,
		poll:        unix.NsecToTimespec(int64(rc.poll)),
		polling:     rc.poll > 0,
		sink:        rc.sink,
		node:        rc.node,
	}, nil
}

// add registers a subscriber's socket with the loop.
func (r *reader) add(s *subscriber) error {
	slot := r.nslots.Add(1) - 1
	if int(slot) >= len(r.slots) {
		return ErrConfig
	}
	r.slots[slot].Store(s)
	if err := r.ep.add(s.fd, slot); err != nil {
		return err
	}
	r.inSet.Add(1)
	return nil
}

// sinkDue reports whether the loop should switch s to the sink now (see
// subscriber.wantsSink).
func (r *reader) sinkDue(s *subscriber) bool {
	return r.sink != nil && r.sinkErr.Load() == nil && !s.sunk.Load() && s.wantsSink()
}

// toSink switches s to the sink, on the loop's thread, which owns its
// socket: the filter first, so that from then on every datagram is counted
// by the sink; then what was queued before the filter is read and counted
// here; then the socket leaves the epoll set, and from now on the loop only
// sends its keepalives. Each datagram is counted once, by the reader or by
// the sink. A failure is kept for sinkSubs, which stops the run.
func (r *reader) toSink(s *subscriber) {
	if err := r.sink.attachNode(s.fd, r.node); err != nil {
		r.sinkErr.Store(&err)
		return
	}
	r.drain(s)
	if err := r.ep.del(s.fd); err != nil {
		err = fmt.Errorf("sink: %w", err)
		r.sinkErr.Store(&err)
		return
	}
	r.inSet.Add(-1)
	s.sunk.Store(true)
}

// switchError returns the error of a failed switch to the sink, or nil.
func (r *reader) switchError() error {
	if p := r.sinkErr.Load(); p != nil {
		return *p
	}
	return nil
}

// start runs the loop on its own locked OS thread.
func (r *reader) start() { go r.loop() }

// close stops the loop and waits for it.
func (r *reader) close() {
	r.stop.Store(true)
	<-r.done
	r.ep.close()
}

func (r *reader) loop() {
	defer close(r.done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.tid.Store(int32(unix.Gettid()))
	if len(r.cpus) > 0 {
		_ = setAffinity(0, r.cpus)
	}
	for !r.stop.Load() {
		// -rx-poll never blocks in epoll_wait, it sleeps instead; with no
		// socket left in the set (all sunk) there is nothing to poll.
		poll := r.polling && r.inSet.Load() > 0
		timeout := 50 // ms
		if poll {
			timeout = 0
		}
		n := r.ep.wait(timeout)
		for i := range n {
			s := r.slots[r.ep.events[i].Fd].Load()
			if s == nil {
				continue
			}
			r.drain(s)
			// The keyframe that ends s's time in user space is seen
			// here, so with -sink it usually switches right away.
			if r.sinkDue(s) {
				r.toSink(s)
			}
		}
		now := monoNow()
		if now-r.lastSweep >= int64(sweepEvery) {
			r.lastSweep = now
			r.sweep(now)
		}
		if now-r.lastJitter >= int64(jitterEvery) {
			r.lastJitter = now
			r.publishJitter()
		}
		for k := range r.c {
			r.pub[k].Store(r.c[k])
		}
		if poll && n == 0 {
			// Nothing new this round: sleep like a NIC's interrupt
			// coalescing timer. No thread waits in epoll_wait, so the
			// sender's enqueue (ep_poll_callback) wakes nobody.
			r.c[ctrPollSleeps]++
			_ = unix.Nanosleep(&r.poll, nil)
		}
	}
}

// drain reads every datagram queued on s's socket and accounts it.
func (r *reader) drain(s *subscriber) {
	for {
		got, errno := recvmmsg(s.fd, r.batch)
		if errno != 0 || got == 0 {
			return
		}
		r.c[ctrSyscalls]++
		at := monoNow() // arrival clock, once per recvmmsg batch
		for j := range got {
			r.packet(s, r.batch.bufs[j][:r.batch.msgs[j].Len], at)
		}
		if got < len(r.batch.msgs) {
			return
		}
	}
}

// packet demultiplexes one datagram (RFC 7983 §7) and accounts it.
func (r *reader) packet(s *subscriber, p []byte, now int64) {
	if len(p) == 0 {
		return
	}
	switch b := p[0]; {
	case b < 4:
		r.c[ctrSTUN]++
		s.onSTUN(p)
	case b >= 20 && b <= 63:
		r.c[ctrDTLS]++
		s.onDTLS(p)
	case b >= 128 && b <= 191 && len(p) >= 2:
		switch {
		case p[1] >= 192 && p[1] <= 223: // RFC 5761 §4
			r.c[ctrRTCP]++
		case len(p) < 12:
			r.c[ctrOther]++
		default:
			r.rtpPacket(s, p, now)
		}
	default:
		r.c[ctrOther]++
	}
}

// rtpPacket accounts an SRTP packet and, on a sample, authenticates and
// decrypts it to check the latency stamp and look for a keyframe.
func (r *reader) rtpPacket(s *subscriber, p []byte, now int64) {
	pt := p[1] & 0x7f
	seq := binary.BigEndian.Uint16(p[2:])
	ts := binary.BigEndian.Uint32(p[4:])
	ssrc := binary.BigEndian.Uint32(p[8:])
	st := s.stream(ssrc, pt)
	prevExp, prevGaps, prevLate := st.expected, st.gaps, st.late
	prevMax := st.maxExt
	st.update(seq, ts, now)
	r.c[ctrRTP]++
	r.c[ctrBytes] += uint64(len(p))
	r.c[ctrExpected] += st.expected - prevExp
	r.c[ctrGaps] += st.gaps - prevGaps
	r.c[ctrLate] += st.late - prevLate
	s.pkts++
	keys := s.keys.Load()
	if keys == nil {
		r.c[ctrNoKey]++
		return
	}
	if r.nack && st.maxExt-prevMax > 1 && prevExp != 0 {
		s.sendNACK(keys, ssrc, uint16(prevMax+1), uint16(st.maxExt-prevMax-1))
		r.c[ctrNACKs]++
	}
	video := s.ptKind[pt] == kindVideo
	if !(video && !s.kfSeen) && s.pkts%r.verifyEvery != 0 {
		return
	}
	out, err := keys.dec.DecryptRTP(r.dec[:0], p, &r.hdr)
	if err != nil {
		r.c[ctrAuthFail]++
		return
	}
	r.c[ctrVerified]++
	hl := rtpHeaderLen(out)
	if hl < 0 {
		return
	}
	pl := out[hl:]
	if len(pl) >= stampOffset+stampLen && binary.BigEndian.Uint64(pl[stampOffset:]) == stampMagic {
		sent := int64(binary.BigEndian.Uint64(pl[stampOffset+8:]))
		if d := now - sent; d >= 0 {
			r.c[ctrStamps]++
			r.lat.add(uint64(d / 1000))
		}
	}
	if video && !s.kfSeen && isH264Keyframe(pl) {
		s.kfSeen = true
		s.firstKeyframe.Store(now)
	}
}

// sweep goes over every subscriber: it switches to the sink those that
// wait for it (sinkSubs' request at the step's end, or a keyframe seen just
// before the connect completed), and sends the keepalives that are due, at
// most maxKeepalivesPerSweep (see keepaliveEvery).
func (r *reader) sweep(now int64) {
	budget := maxKeepalivesPerSweep
	for i := range int(r.nslots.Load()) {
		s := r.slots[i].Load()
		if s == nil {
			continue
		}
		if r.sinkDue(s) {
			r.toSink(s)
		}
		if s.phase.Load() < phaseDTLS {
			continue
		}
		if s.nextKA == 0 {
			s.nextKA = firstKeepalive(now, r.rnd)
		}
		if now < s.nextKA || budget == 0 {
			continue
		}
		budget--
		s.nextKA = nextKeepalive(now, r.rnd)
		s.sendBinding()
		r.c[ctrKeepalive]++
	}
}

// publishJitter publishes the mean video jitter over the subscribers.
func (r *reader) publishJitter() {
	var jsum float64
	var jn int
	for i := range int(r.nslots.Load()) {
		s := r.slots[i].Load()
		if s == nil {
			continue
		}
		for k := range s.streams {
			if st := &s.streams[k]; st.used && st.clock == 90000 {
				jsum += st.jitterMs()
				jn++
			}
		}
	}
	if jn > 0 {
		r.jitterBits.Store(math.Float64bits(jsum / float64(jn)))
	}
}

// snapshot returns the published counters.
func (r *reader) snapshot() [nCounters]uint64 {
	var out [nCounters]uint64
	for k := range r.pub {
		out[k] = r.pub[k].Load()
	}
	return out
}

// rtpHeaderLen returns the RTP header length of b (RFC 3550 §5.1, §5.3.1),
// or -1 when b is too short.
func rtpHeaderLen(b []byte) int {
	if len(b) < 12 {
		return -1
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return -1
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	if n > len(b) {
		return -1
	}
	return n
}

// isH264Keyframe reports whether an H.264 RTP payload (RFC 6184) starts or
// carries an IDR slice or an SPS.
func isH264Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A
		for i := 1; i+2 < len(p); {
			n := int(binary.BigEndian.Uint16(p[i:]))
			if i+2 >= len(p) {
				break
			}
			if nt := p[i+2] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + n
		}
	case 28: // FU-A
		return p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
