package fastpath

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
)

// stamped is a datagram and the time the kernel received it (SO_TIMESTAMPNS),
// so a test's own scheduling does not blur when packets came.
type stamped struct {
	b  []byte
	at time.Time
}

func stampSocket(t testing.TB, fd int) {
	t.Helper()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		t.Fatal(err)
	}
}

// readStamped takes every datagram queued on fd with its receive time.
func readStamped(fd int) []stamped {
	var out []stamped
	oob := make([]byte, 128)
	for {
		b := make([]byte, 2048)
		n, oobn, _, _, err := unix.Recvmsg(fd, b, oob, unix.MSG_DONTWAIT)
		if err != nil {
			return out
		}
		var at time.Time
		cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range cmsgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				at = time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
			}
		}
		out = append(out, stamped{b: b[:n], at: at})
	}
}

// farRun is a started two-core engine whose publisher (core 0) sends real
// SRTP over loopback and whose one player is owned by core 1.
type farRun struct {
	*qrig
	t    *testing.T
	buf  []byte
	seq  uint16
	sent map[uint16][]byte // payload by publisher sequence number
	got  []stamped         // what the player received
}

func newFarRun(t *testing.T, cfg Config) *farRun {
	cfg.Cores = 2
	q := newQRigConfig(t, cfg, 1, func(int) int { return 1 })
	q.retable(func(route.SessionID) bool { return false })
	stampSocket(t, q.players[0].fd)
	q.e.Start()
	return &farRun{qrig: q, t: t, buf: make([]byte, 1500), sent: map[uint16][]byte{}}
}

// send sends the publisher's next packet: nal and 1100 bytes of filler
// unique to the packet.
func (f *farRun) send(nal []byte) {
	f.seq++
	pay := append(append([]byte(nil), nal...), make([]byte, 1100)...)
	binary.BigEndian.PutUint16(pay[len(nal):], f.seq)
	for i := len(nal) + 2; i < len(pay); i++ {
		pay[i] = byte(int(f.seq) + i)
	}
	sendTo(f.t, f.pub.fd, f.e.Port(), f.packet(f.buf, f.seq, uint32(f.seq)*3000, pay...))
	f.sent[f.seq] = pay
	f.got = append(f.got, readStamped(f.players[0].fd)...)
}

// stream sends n packets of nal, gap apart.
func (f *farRun) stream(n int, nal []byte, gap time.Duration) {
	for range n {
		f.send(nal)
		time.Sleep(gap)
	}
}

// video decrypts what the player got: each RTP packet's publisher sequence
// number (by the rewrite's offset from the first, which must be first)
// and arrival, after checking that the publisher's packets first..f.seq
// all came, in order and byte-exact, the first one twice (pace.go
// replayedOne).
func (f *farRun) video(first uint16) (pubSeqs []uint16, at []time.Time) {
	t := f.t
	t.Helper()
	rtp := func() (n int) {
		for _, d := range f.got {
			if Classify(d.b) == ClassRTP {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(3 * time.Second); rtp() < int(f.seq-first)+2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		f.got = append(f.got, readStamped(f.players[0].fd)...)
	}
	ctx, err := srtp.CreateContext(f.keys.LocalKey, f.keys.LocalSalt, f.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var delta uint16
	var prev []byte
	for _, d := range f.got {
		if Classify(d.b) != ClassRTP {
			continue
		}
		if bytes.Equal(d.b, prev) {
			continue // the first packet's repeat (the same SRTP packet)
		}
		prev = d.b
		plain, err := ctx.DecryptRTP(nil, d.b, nil)
		if err != nil {
			t.Fatalf("packet %d: %v", len(pubSeqs), err)
		}
		seq := binary.BigEndian.Uint16(plain[2:])
		if len(pubSeqs) == 0 {
			delta = seq - first
		}
		ps := seq - delta
		if want := first + uint16(len(pubSeqs)); ps != want {
			t.Fatalf("packet %d: publisher seq %d, want %d", len(pubSeqs), ps, want)
		}
		if !bytes.Equal(plain[12:], f.sent[ps]) {
			t.Fatalf("packet %d (publisher seq %d): payload differs", len(pubSeqs), ps)
		}
		pubSeqs, at = append(pubSeqs, ps), append(at, d.at)
	}
	if len(pubSeqs) == 0 || pubSeqs[len(pubSeqs)-1] != f.seq {
		t.Fatalf("the player got publisher seqs %d…%d of %d…%d", first, first+uint16(len(pubSeqs))-1, first, f.seq)
	}
	return pubSeqs, at
}

// TestGOPReplayFarPaced: a player on another core than its publisher's
// gets the cached GOP (1 s of 0.9 Mbps) paced like a local one: no more than
// the first burst and one tick's share at once, the rest over the next
// ticks, then the live packets the replay caught up with; the whole of it
// in order and byte-exact, with no ring overflow.
func TestGOPReplayFarPaced(t *testing.T) {
	f := newFarRun(t, Config{})
	const gopLen = 200
	f.send(nalIDR)
	f.stream(gopLen-1, nalP, 5*time.Millisecond)
	f.retable(func(route.SessionID) bool { return true }) // the join, on core 1
	f.stream(200, nalP, 5*time.Millisecond)
	seqs, at := f.video(1)
	t0 := at[0]
	atOnce, gopEnd := 0, time.Duration(0)
	for i, ps := range seqs {
		if at[i].Sub(t0) < 20*time.Millisecond {
			atOnce++
		}
		if ps == gopLen {
			gopEnd = at[i].Sub(t0)
		}
	}
	cs := f.e.CoreStats()
	_ = f.e.Close()
	pq := &f.e.cores[1].sess[2].pq
	t.Logf("%d packets: %d in the first 20 ms, the GOP's last after %v; core 0: %d paced waits, %d replayed; player: %d replayed, %d of the GOP at its join",
		len(seqs), atOnce, gopEnd, cs[0].GOPPaced, cs[0].GOPReplayed, pq.replay, pq.joinGOP)
	// At once: the burst (64 KB) and at most a tick's share at 4× 0.9 Mbps.
	if max := (replayBurst + 24<<10) / 1100; atOnce > max {
		t.Errorf("%d packets in the replay's first 20 ms, want ≤ %d", atOnce, max)
	}
	// (226 KB − 64 KB) at 4× 226 KB/s is 180 ms.
	if gopEnd < 80*time.Millisecond {
		t.Errorf("the GOP's last packet %v after its first, want ≥ 80 ms (paced)", gopEnd)
	}
	if cs[0].GOPPaced == 0 || cs[0].GOPReplays != 1 || cs[0].GOPReplayed < gopLen || cs[0].GOPSkipped != 0 {
		t.Errorf("core 0: %d paced, %d replays, %d replayed, %d skipped; want > 0, 1, ≥ %d, 0",
			cs[0].GOPPaced, cs[0].GOPReplays, cs[0].GOPReplayed, cs[0].GOPSkipped, gopLen)
	}
	if d := f.e.Stats().Drops[DropRingFull]; d != 0 {
		t.Errorf("%d ring-full drops", d)
	}
	if pq.joinGOP < gopLen || pq.replay <= pq.joinGOP {
		t.Errorf("player: %d replayed, %d of the GOP at its join; want more than that, ≥ %d", pq.replay, pq.joinGOP, gopLen)
	}
}

// TestGOPReplayFarFallback: a player on another core than its publisher's
// that joins a GOP too old to replay gets no video until a keyframe comes;
// from a publisher that ignores the join's PLI, it gets the old GOP after
// joinKeyframeWait, in order and byte-exact, then the live packets; when
// the keyframe comes, it starts from it at once.
func TestGOPReplayFarFallback(t *testing.T) {
	for _, answered := range []bool{false, true} {
		name := map[bool]string{false: "PLI ignored", true: "PLI answered"}[answered]
		t.Run(name, func(t *testing.T) {
			f := newFarRun(t, Config{ReplayMaxAge: 100 * time.Millisecond})
			f.send(nalIDR)
			f.stream(29, nalP, 10*time.Millisecond) // 0.3 s: too old
			join := time.Now()
			f.retable(func(route.SessionID) bool { return true })
			first := uint16(1)
			if answered {
				f.stream(30, nalP, 10*time.Millisecond)
				first = f.seq + 1
				f.send(nalIDR)
			}
			f.stream(150-int(f.seq), nalP, 10*time.Millisecond) // 1.2 s after the join
			seqs, at := f.video(first)
			cs := f.e.CoreStats()
			wait := at[0].Sub(join)
			t.Logf("first video %v after the join (publisher seq %d); %d packets; core 0: %d fallbacks, %d too old",
				wait, seqs[0], len(seqs), cs[0].GOPFallbacks, cs[0].GOPTooOld)
			if cs[0].GOPTooOld != 1 {
				t.Errorf("%d replays refused as too old, want 1", cs[0].GOPTooOld)
			}
			if answered {
				if wait > joinKeyframeWait/2 || cs[0].GOPFallbacks != 0 {
					t.Errorf("keyframe answered: first video %v after the join, %d fallbacks; want < %v, 0", wait, cs[0].GOPFallbacks, joinKeyframeWait/2)
				}
				return
			}
			if wait < joinKeyframeWait || wait > joinKeyframeWait+500*time.Millisecond || cs[0].GOPFallbacks != 1 {
				t.Errorf("PLI ignored: first video %v after the join, %d fallbacks; want %v…%v, 1",
					wait, cs[0].GOPFallbacks, joinKeyframeWait, joinKeyframeWait+500*time.Millisecond)
			}
		})
	}
}

// TestGOPReplayFarAllocs pins zero allocations on a cross-core replay's
// tick: the publisher's core pushing a chunk, the player's core sending it.
func TestGOPReplayFarAllocs(t *testing.T) {
	q := newQRig(t, 2, 1, func(int) int { return 1 })
	q.retable(func(route.SessionID) bool { return false })
	buf := make([]byte, 1500)
	payload := append(append([]byte(nil), nalP...), make([]byte, 1100)...)
	q.drive(0, q.packet(buf, 1, 1000, nalIDR...))
	for seq := uint16(2); seq <= 200; seq++ {
		q.drive(0, q.packet(buf, seq, uint32(seq)*3000, payload...))
	}
	q.retable(func(route.SessionID) bool { return true })
	q.drive(1)
	q.drive(0)
	q.drive(1)
	c0, c1 := q.e.cores[0], q.e.cores[1]
	if s := q.e.Stats(); s.GOPReplays != 1 || s.GOPReplayed == 0 {
		t.Fatalf("%d replays, %d packets replayed; want a replay to core 1", s.GOPReplays, s.GOPReplayed)
	}
	c0.far = append(c0.far[:0], 2)
	before := q.e.Stats()
	runs := 0
	zeroAllocs(t, "cross-core paced replay tick", func() {
		c0.sess[2].far = farReplay{state: farPacing, listed: true, to: 1,
			cur: replayCursor{on: true, pub: 1, epoch: 1, gen: c0.sess[1].pub.gop.Gen(), end: 200}}
		c1.sess[2].pq.joining = true
		q.forceTimers()
		q.drive(0)
		q.drive(1)
		runs++
	})
	// (The player's socket fills up: the sends beyond it are counted drops.)
	s := q.e.Stats()
	if n := s.GOPReplayed - before.GOPReplayed; n < uint64(runs)*replayBurst/1200 {
		t.Errorf("%d runs replayed %d packets, want a burst (%d) each", runs, n, replayBurst/1200)
	}
	if s.TxPackets+s.Drops[DropSendFailed]-before.TxPackets-before.Drops[DropSendFailed] < uint64(runs)*replayBurst/1200 {
		t.Errorf("the player's core sent %d packets in %d runs, want a burst each", s.TxPackets-before.TxPackets, runs)
	}
}
