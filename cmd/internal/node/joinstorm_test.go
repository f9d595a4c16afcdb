package node

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/fanout/fanout/bench"
	"github.com/fanout/fanout/fastpath"
)

// TestJoinStorm: 400 fanout-bench subscribers join one stream, 64 at a
// time, on the real server. All connect and none loses media; the first
// binding of each is answered only once its address is in the route table
// (else its DTLS would be dropped and retransmitted), its consent refreshes
// are answered on the fastpath cores, nothing overflows the upcall ring,
// and control coalesced the storm's route-table rebuilds (three changes per
// session: offer, binding, keys).
func TestJoinStorm(t *testing.T) {
	srv := startTestServer(t, "")
	const subs = 400
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{
		WHIP: srv.url("/rtc/v1/whip/?app=live&stream=storm"), WHEP: srv.url("/rtc/v1/whep/?app=live&stream=storm"),
		Mode: "fixed", Subs: subs, Concurrency: 64, Bitrate: 500_000, Sink: true, RxPoll: time.Millisecond,
		Dur: 3 * time.Second, Warmup: 3 * time.Second, ServerPID: os.Getpid(), ConnectTimeout: 20 * time.Second,
	})
	if errors.Is(err, bench.ErrSinkPermission) {
		t.Skipf("needs CAP_BPF for fanout-bench's sink: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Result // fixed mode: one step, no Steps list
	t.Logf("%d subscribers: connect p99 %.0f ms, first keyframe p99 %.0f ms, received %d of %d",
		r.SubscribersConnected, r.ConnectP99Ms, r.FirstKeyframeP99Ms, r.PacketsReceived, r.PacketsExpected)
	if r.SubscribersConnected != subs || r.LossRatio > 0 || r.PacketsExpected < subs*100 {
		t.Fatalf("connected %d of %d, received %d of %d (errors %v)",
			r.SubscribersConnected, subs, r.PacketsReceived, r.PacketsExpected, rep.Errors)
	}
	counts, _ := srv.ctl.Stats()
	fs := srv.fp.Stats()
	t.Logf("tables published %d for %d sessions; bindings: %d by control, %d on the cores; rejected %d",
		counts.TablesPublished, counts.SessionsCreated, counts.STUNBindings, fs.STUNAnswered, counts.STUNRejected)
	if fs.STUNAnswered < subs {
		t.Errorf("the cores answered %d consent refreshes for %d subscribers over %v", fs.STUNAnswered, subs, 6*time.Second)
	}
	if counts.STUNRejected != 0 || fs.Drops[fastpath.DropUpcallFull] != 0 {
		t.Errorf("STUN rejected %d, upcall ring full %d", counts.STUNRejected, fs.Drops[fastpath.DropUpcallFull])
	}
	if changes := 3 * counts.SessionsCreated; counts.TablesPublished >= changes {
		t.Errorf("%d tables for %d changes: nothing coalesced", counts.TablesPublished, changes)
	}
}
