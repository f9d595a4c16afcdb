package node

import (
	"context"
	"testing"
	"time"
)

// TestSimulcastLayers: a pion publisher sends three simulcast encodings
// (RIDs h, m, l); players pinned with ?layer=l and ?layer=h get only their
// layer's payloads, byte-exact, from a keyframe; a player switched live
// through the WHEP layer extension (h → l → m) sees one continuous stream
// (one SSRC, seq +1, no timestamp going back) whose every switch lands on
// a keyframe; the API shows the layer each player is on.
func TestSimulcastLayers(t *testing.T) {
	srv := startTestServer(t, "")
	q := "app=live&stream=sim"
	pub := newSimPublisher(t, srv, q+"&codec=vp8")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pub.stream(ctx, t); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)
	low, high := newRTPPlayer(t, srv, q+"&layer=l"), newRTPPlayer(t, srv, q+"&layer=h")
	sw := newRTPPlayer(t, srv, q)
	time.Sleep(1500 * time.Millisecond)
	sw.selectLayer(t, srv, "l")
	time.Sleep(1500 * time.Millisecond)
	checkClientLayers(t, srv, map[string]string{sessionOf(low.location): "l", sessionOf(high.location): "h",
		sessionOf(sw.location): "l"})
	sw.selectLayer(t, srv, "m")
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	time.Sleep(200 * time.Millisecond)

	for _, c := range []struct {
		name  string
		p     *rtpPlayer
		layer int
	}{{"layer=l", low, 2}, {"layer=h", high, 0}} {
		pkts := c.p.received()
		runs, layers := layerRuns(pkts)
		if len(runs) != 1 || layers[0] != c.layer {
			t.Fatalf("%s: got layers %v, want only %s", c.name, layers, simRIDs[c.layer])
		}
		if !isKeyStart(pkts[0].Payload) {
			t.Errorf("%s: first packet is not a keyframe start", c.name)
		}
		checkLayerRun(t, c.name, pkts, pub.sentLayer(c.layer), c.layer)
		checkContinuous(t, c.name, pkts)
		t.Logf("%s: %d packets, all of layer %s, byte-exact", c.name, len(pkts), simRIDs[c.layer])
	}
	pkts := sw.received()
	runs, layers := layerRuns(pkts)
	if len(layers) != 3 || layers[0] != 0 || layers[1] != 2 || layers[2] != 1 {
		t.Fatalf("switching player: layers %v, want h, l, m", layers)
	}
	for i, run := range runs {
		if !isKeyStart(run[0].Payload) {
			t.Errorf("switching player: run %d (layer %s) does not start on a keyframe", i, simRIDs[layers[i]])
		}
		checkLayerRun(t, "switching player", run, pub.sentLayer(layers[i]), layers[i])
	}
	checkContinuous(t, "switching player", pkts)
	pub.mu.Lock()
	plis := pub.plis
	pub.mu.Unlock()
	if plis[1] == 0 || plis[2] == 0 {
		t.Errorf("no PLI on the layers switched to: %v", plis)
	}
	t.Logf("switching player: runs of %d, %d, %d packets (h, l, m); PLIs per layer %v", len(runs[0]), len(runs[1]), len(runs[2]), plis)
}

// checkClientLayers reads /api/v1/clients and checks each named player's
// current layer.
func checkClientLayers(t *testing.T, srv *Server, want map[string]string) {
	t.Helper()
	var clients struct {
		Clients []struct {
			Session string
			Layer   *struct {
				Current, Target string
				Layers          []string
			}
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		getJSON(t, srv.url("/api/v1/clients/"), &clients)
		bad := ""
		for _, c := range clients.Clients {
			if w, ok := want[c.Session]; ok && (c.Layer == nil || c.Layer.Current != w) {
				bad = c.Session + " is not on " + w
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("api: %s: %+v", bad, clients)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
