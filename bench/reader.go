package bench

import (
	"encoding/binary"
	"math"
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

// keepaliveEvery is the STUN consent/keepalive interval per subscriber.
const keepaliveEvery = 2 * time.Second

// reader is one receive loop: an epoll set over many subscriber sockets,
// drained with recvmmsg. Its goroutine owns the reader-owned fields of its
// subscribers.
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
	lastKA      int64
	jitterBits  atomic.Uint64 // float64 ms, mean video jitter
	poll        unix.Timespec // -rx-poll: sleep between empty rounds; zero = block in epoll_wait
	polling     bool
}

// readerConfig is what a reader needs from the run's Config.
type readerConfig struct {
	capacity    int           // subscriber slots
	verifyEvery int           // authenticate 1 SRTP packet in verifyEvery
	nack        bool          // send NACKs on gaps
	cpus        []int         // pin the loop's thread here
	poll        time.Duration // -rx-poll; 0 = block in epoll_wait
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
		poll:        unix.NsecToTimespec(int64(rc.poll)),
		polling:     rc.poll > 0,
	}, nil
}

// add registers a subscriber's socket with the loop.
func (r *reader) add(s *subscriber) error {
	slot := r.nslots.Add(1) - 1
	if int(slot) >= len(r.slots) {
		return ErrConfig
	}
	s.rd = r
	r.slots[slot].Store(s)
	if err := r.ep.add(s.fd, slot); err != nil {
		return err
	}
	r.inSet.Add(1)
	return nil
}

// sink takes s's socket out of the epoll set: from now on the loop only
// sends its keepalives. The caller has attached the sink filter first, so
// what is still queued on the socket is all the loop could read.
func (r *reader) sink(s *subscriber) error {
	if err := r.ep.del(s.fd); err != nil {
		return err
	}
	r.inSet.Add(-1)
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
		now := monoNow()
		for i := range n {
			s := r.slots[r.ep.events[i].Fd].Load()
			if s == nil {
				continue
			}
			for {
				got, errno := recvmmsg(s.fd, r.batch)
				if errno != 0 || got == 0 {
					break
				}
				r.c[ctrSyscalls]++
				at := monoNow() // arrival clock, once per recvmmsg batch
				for j := range got {
					r.packet(s, r.batch.bufs[j][:r.batch.msgs[j].Len], at)
				}
				if got < len(r.batch.msgs) {
					break
				}
			}
		}
		if now-r.lastKA > int64(200*time.Millisecond) {
			r.lastKA = now
			r.keepalives(now)
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

// keepalives sends STUN binding requests to subscribers that are due and
// publishes the mean video jitter.
func (r *reader) keepalives(now int64) {
	n := int(r.nslots.Load())
	var jsum float64
	var jn int
	for i := range n {
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
		if s.phase.Load() < phaseDTLS || now < s.nextKA {
			continue
		}
		s.nextKA = now + int64(keepaliveEvery)
		s.sendBinding()
		r.c[ctrKeepalive]++
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
