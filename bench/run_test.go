package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fanout/fanout/bench/pionrelay"
)

// TestRunAgainstPionRelay runs the fixed mode end to end against the pion
// relay over loopback: WHIP publisher, lightweight WHEP subscribers (STUN,
// DTLS, SRTP), accounting, the floor, and session cleanup.
func TestRunAgainstPionRelay(t *testing.T) {
	checkGoroutines(t)
	relay, err := pionrelay.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{WHIP: relay.URL() + "/whip", WHEP: relay.URL() + "/whep", Subs: 8,
		Dur: 2 * time.Second, Warmup: 4 * time.Second, ServerPID: os.Getpid(), Floor: true, VerifyEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Result
	t.Logf("%+v", r)
	if r.SubscribersConnected != 8 || r.ConnectFailures != 0 {
		t.Fatalf("connected %d, failures %d, errors %v", r.SubscribersConnected, r.ConnectFailures, rep.Errors)
	}
	// 1 Mbps synthetic stream: about 170 packets/s per subscriber.
	if min := uint64(8 * 170 * 2 * 6 / 10); r.PacketsReceived < min {
		t.Fatalf("received %d packets, want at least %d", r.PacketsReceived, min)
	}
	if r.LossRatio > 0.05 || r.SRTPAuthFailures != 0 || r.SRTPVerified == 0 {
		t.Fatalf("loss %v, auth failures %d, verified %d", r.LossRatio, r.SRTPAuthFailures, r.SRTPVerified)
	}
	if r.LatencySamples == 0 || r.LatencyP50Ms < 0 || r.ConnectP99Ms <= 0 || r.FirstKeyframeP99Ms <= 0 {
		t.Fatalf("latency %v/%v (%d samples), connect %v, keyframe %v",
			r.LatencyP50Ms, r.LatencyP99Ms, r.LatencySamples, r.ConnectP99Ms, r.FirstKeyframeP99Ms)
	}
	if r.ServerCPUPercent <= 0 || r.ServerCPUUsPerPacket <= 0 || r.BenchCPUUsPerPacket <= 0 || r.FloorCPUUsPerPacket <= 0 {
		t.Fatalf("cpu accounting: server %v%% %v µs, bench %v µs, floor %v µs",
			r.ServerCPUPercent, r.ServerCPUUsPerPacket, r.BenchCPUUsPerPacket, r.FloorCPUUsPerPacket)
	}
	deadline := time.Now().Add(5 * time.Second)
	for relay.Sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := relay.Sessions(); n != 0 {
		t.Fatalf("%d relay sessions left after Run", n)
	}
}

// TestFloorMode runs the bare GCM + sendmmsg loop and checks it delivers
// the expected packet count with no loss.
func TestFloorMode(t *testing.T) {
	checkGoroutines(t)
	rep, err := Run(context.Background(), Config{Mode: "floor", Subs: 50, Dur: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Result
	t.Logf("floor: %.0f pps sent, %.3f µs/packet, loss %.4f", r.FloorEgressPPS, r.FloorCPUUsPerPacket, r.LossRatio)
	want := 50 * streamPPS(1_000_000, 1200, 30)
	if r.FloorEgressPPS < want*0.8 || r.FloorEgressPPS > want*1.2 {
		t.Fatalf("floor sent %.0f pps, want about %.0f", r.FloorEgressPPS, want)
	}
	if r.LossRatio > 0.01 || r.FloorCPUUsPerPacket <= 0 || r.PacketsReceived == 0 {
		t.Fatalf("loss %v, cpu %v, received %d", r.LossRatio, r.FloorCPUUsPerPacket, r.PacketsReceived)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("missing -whep must fail")
	}
	c := Config{Mode: "ramp", RampStart: 100, RampStep: 200, RampMax: 500}
	if got := c.stepSizes(); len(got) != 3 || got[2] != 500 {
		t.Fatalf("ramp steps %v", got)
	}
	c = Config{Mode: "sweep", Steps: []int{1000, 100, 500}}
	if got := c.stepSizes(); got[0] != 100 || got[2] != 1000 {
		t.Fatalf("sweep steps %v", got)
	}
}

// TestRunSinkRampAgainstPionRelay ramps 4 → 8 subscribers in sink mode:
// each step's subscribers connect and are read until their first keyframe,
// then switch to the counting filter; loss is the filter's count against the
// publisher's packets, exact to the packet on an idle loopback.
func TestRunSinkRampAgainstPionRelay(t *testing.T) {
	testSink(t) // privilege probe
	checkGoroutines(t)
	relay, err := pionrelay.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{WHIP: relay.URL() + "/whip", WHEP: relay.URL() + "/whep", Mode: "ramp",
		RampStart: 4, RampStep: 4, RampMax: 8, LossThreshold: 0.005, Sink: true, RxPoll: time.Millisecond,
		Dur: 2 * time.Second, Warmup: 4 * time.Second, ServerPID: os.Getpid(), Floor: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 2 || rep.RampMaxSubscribers != 8 || rep.RampMaxEgressPPS <= 0 {
		t.Fatalf("steps %d, ramp max %d subscribers %.0f pps, stop %q, errors %v",
			len(rep.Steps), rep.RampMaxSubscribers, rep.RampMaxEgressPPS, rep.RampStopReason, rep.Errors)
	}
	for _, r := range rep.Steps {
		t.Logf("%d subs: received %d of %d, loss %.5f, bench %.3f µs/pkt, floor %.3f µs/pkt loss %.4f",
			r.SubscribersConnected, r.PacketsReceived, r.PacketsExpected, r.LossRatio, r.BenchCPUUsPerPacket,
			r.FloorCPUUsPerPacket, r.FloorLossRatio)
		if r.ReceiveMode != "sink" || r.SinkSubscribers != r.SubscribersRequested {
			t.Fatalf("mode %q, %d sink subscribers of %d", r.ReceiveMode, r.SinkSubscribers, r.SubscribersRequested)
		}
		if r.PacketsExpected < uint64(r.SinkSubscribers)*100 || r.LossRatio > 0.005 {
			t.Fatalf("received %d of %d (loss %v)", r.PacketsReceived, r.PacketsExpected, r.LossRatio)
		}
		if r.LatencyP50Ms != -1 || r.JitterMs != -1 || r.SRTPVerified != 0 {
			t.Fatalf("sink measured latency %v, jitter %v, verified %d", r.LatencyP50Ms, r.JitterMs, r.SRTPVerified)
		}
		if r.FloorCPUUsPerPacket <= 0 || r.FloorLossRatio != 0 {
			t.Fatalf("sink floor: %v µs/pkt, loss %v", r.FloorCPUUsPerPacket, r.FloorLossRatio)
		}
	}
	var b strings.Builder
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "capacity within loss ≤ 0.500 %: 8 subscribers") {
		t.Fatalf("table does not state the capacity:\n%s", b.String())
	}
}

// TestFloorRxPoll runs the floor with polling readers: every packet sent
// arrives, and the readers slept between rounds.
func TestFloorRxPoll(t *testing.T) {
	checkGoroutines(t)
	rep, err := Run(context.Background(), Config{Mode: "floor", Subs: 50, Dur: time.Second, RxPoll: 500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Result
	if r.ReceiveMode != "poll" || r.RxPollUs != 500 || r.LossRatio > 0.01 || r.PacketsReceived == 0 {
		t.Fatalf("mode %q %v µs, loss %v, received %d", r.ReceiveMode, r.RxPollUs, r.LossRatio, r.PacketsReceived)
	}
}
