package bench

import (
	"context"
	"os"
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
