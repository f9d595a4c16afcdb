//go:build soak

package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/fanout/fanout/bench"
)

// liveRound counts one minute of real players.
type liveRound struct{ joined, played, vanished int }

// benchRound is one minute's fanout-bench subscribers.
type benchRound struct {
	subs, connected int
	loss            float64
	err             error
	errs            []string // the report's, the first few
}

// soakTotals sums the churn over the whole soak.
type soakTotals struct{ joined, vanished, benchSubs int }

func (s *soakTotals) add(l liveRound, b benchRound) {
	s.joined += l.joined
	s.vanished += l.vanished
	s.benchSubs += b.subs
}

// soakMinute churns until deadline: WHEP sessions without media (churn),
// real pion players (liveChurn) and ten fanout-bench subscribers, side by
// side, and reports what failed.
func soakMinute(t *testing.T, srv *Server, whep string, minute int, deadline time.Time, rng *rand.Rand, total *soakTotals) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var fails int64
	var err error
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		fails, err = churn(ctx, srv, whep, limitOfferSDP(t, true),
			churnPlan{n: 1 << 30, workers: 4, expireEvery: 10, tcpEvery: 50, pace: 20 * time.Millisecond})
	}()
	benched := make(chan benchRound, 1)
	go func() { benched <- benchSubscribers(ctx, whep) }()
	lc := liveChurn(ctx, t, srv, whep, rng)
	<-churned
	br := <-benched
	total.add(lc, br)
	t.Logf("minute %d: live players %d joined, %d played, %d vanished; fanout-bench %d of %d connected, loss %.4f, %v",
		minute, lc.joined, lc.played, lc.vanished, br.connected, br.subs, br.loss, br.errs)
	if fails > 0 {
		t.Errorf("minute %d: %d churn cycles failed, the first: %v", minute, fails, err)
	}
	if lc.played < lc.joined {
		t.Errorf("minute %d: %d of %d live players got no video", minute, lc.joined-lc.played, lc.joined)
	}
	if br.err != nil || br.connected < br.subs || br.loss > 0.05 {
		t.Errorf("minute %d: fanout-bench subscribers: %d of %d connected, loss %.4f, err %v %v",
			minute, br.connected, br.subs, br.loss, br.err, br.errs)
	}
}

// liveChurn joins real pion players (ICE, DTLS, SRTP) one after another
// until ctx ends: each plays 3–10 s and must receive video, then leaves
// with DELETE or, one in four, vanishes (its peer closed, the session left
// for stun_timeout to end). It stops joining 12 s before ctx ends so the
// last player is gone by the minute's baseline check.
func liveChurn(ctx context.Context, t *testing.T, srv *Server, whep string, rng *rand.Rand) liveRound {
	var r liveRound
	dl, _ := ctx.Deadline()
	for time.Until(dl) > 12*time.Second {
		// A subtest per player: its peer's cleanup runs when it leaves,
		// not at the end of the soak (which would keep every player's
		// packets on the heap the soak measures).
		t.Run(fmt.Sprintf("live%d", r.joined), func(t *testing.T) {
			p := newRecPlayer(t, qualityPeer(t, netip.Addr{}), whep)
			r.joined++
			time.Sleep(3*time.Second + rand.N(7*time.Second))
			if len(p.accessUnits()) > 0 {
				r.played++
			}
			if rng.IntN(4) == 0 {
				r.vanished++
			} else if code, _, body := httpDo(t, http.MethodDelete, srv.url(p.res.Location), nil, ""); code != http.StatusOK {
				t.Errorf("live player DELETE: %d %s", code, body)
			}
			_ = p.pc.Close()
		})
	}
	return r
}

// benchSubscribers runs ten fanout-bench subscribers (its own lightweight
// WHEP client, with NACK) on the live stream for 15 s.
func benchSubscribers(ctx context.Context, whep string) benchRound {
	const subs = 10
	rep, err := bench.Run(ctx, bench.Config{WHEP: whep, NoPublisher: true, Subs: subs, NACK: true,
		Dur: 15 * time.Second, Warmup: 3 * time.Second, Local: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		return benchRound{subs: subs, err: err}
	}
	return benchRound{subs: subs, connected: rep.SubscribersConnected, loss: rep.LossRatio, errs: rep.Errors[:min(3, len(rep.Errors))]}
}

// heapProfile writes the heap profile to $FANOUT_SOAK_PROFILE/heap-NAME.out
// when that is set, to read a growth with `go tool pprof -base`.
func heapProfile(t *testing.T, name string) {
	dir := os.Getenv("FANOUT_SOAK_PROFILE")
	if dir == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, "heap-"+name+".out"))
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Log(err)
	}
}
