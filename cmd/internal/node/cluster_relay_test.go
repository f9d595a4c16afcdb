package node

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fanout/fanout/control/cluster/redistest"
)

// TestClusterRelayOwnerDies: with the Redis registry as Locator, players on
// B and C pull a stream published on A through one relay each; A dies, the
// stream is republished on C, and B's players, never reconnected, get media
// again from C while the owner key names C.
func TestClusterRelayOwnerDies(t *testing.T) {
	rd := redistest.New(t)
	a, b, c := startClusterNode(t, rd, "a", ""), startClusterNode(t, rd, "b", ""), startClusterNode(t, rd, "c", "")
	q := "app=live&stream=moving"
	stop := streamMedia(t, newTestPublisher(t, a, q))
	waitOwner(t, b, "moving", "a", 5*time.Second)
	onB, onC := playersOn(t, b, q, 2), playersOn(t, c, q, 1)
	for _, p := range append(onB, onC...) {
		waitAUs(t, p, 30, 5*time.Second)
	}
	if n := streamPlayers(a, "moving"); n != 2 {
		t.Errorf("A has %d players, want 2 (one relay per edge)", n)
	}
	var api struct {
		Data struct {
			Relays []struct{ Stream, Upstream string } `json:"relays"`
		} `json:"data"`
	}
	code, _, body := httpDo(t, "GET", b.url("/api/v1/cluster"), nil, "")
	if err := json.Unmarshal([]byte(body), &api); code != 200 || err != nil || len(api.Data.Relays) != 1 ||
		api.Data.Relays[0].Upstream != a.ClusterMember().URL() {
		t.Errorf("B's /api/v1/cluster relays: %d %v %s", code, err, body)
	}

	stop()
	a.Close()
	// C's relay lets go of the stream once its upstream is lost.
	for deadline := time.Now().Add(8 * time.Second); len(c.Relays()) == 1 && c.Relays()[0].Connected; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("C's relay still connected 8 s after A died")
		}
	}
	before := []int{onB[0].count(), onB[1].count()}
	stop = streamMedia(t, newTestPublisher(t, c, q))
	defer stop()
	waitOwner(t, b, "moving", "c", 5*time.Second)
	for i, p := range onB {
		waitAUs(t, p, before[i]+30, 10*time.Second)
	}
	// C's relay, redialling dead A, sees C named owner and ends.
	for deadline := time.Now().Add(6 * time.Second); len(c.Relays()) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("C still relays: %+v", c.Relays())
		}
	}
	t.Logf("B's relay: %+v", b.RelayStats())
}
