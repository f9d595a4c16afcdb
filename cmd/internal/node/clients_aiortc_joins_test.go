package node

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// The replay bound TestClientsAiortcJoins gives Fanout (fastpath
// keyframe_replay_age / keyframe_replay_bytes, the defaults spelled out).
const (
	joinsReplayAge   = 2 * time.Second
	joinsReplayBytes = 1 << 20
)

// TestClientsAiortcJoins: an aiortc publisher (VP8, keyframes only when
// asked) and 10 pion players joining one by one, 1 s and 2.5 s apart in
// turn: every join asks for a keyframe, so a player 1 s after the last one
// gets a GOP young enough to replay, and one 2.5 s after it a GOP too old
// (its PLI starts it). Per player, from Fanout's counters and its own record:
// the GOP replayed at its join is within keyframe_replay_bytes and spans
// at most keyframe_replay_age; it lost ≤ 0.5 % and NACKed ≤ 1 % of its
// packets (issue 15's must-show).
func TestClientsAiortcJoins(t *testing.T) {
	requireAiortc(t)
	p := newNetnsPair(t, 0)
	api := p.startFanout(t, fmt.Sprintf("fastpath { keyframe_replay_age %d; keyframe_replay_bytes %d; }\n",
		int(joinsReplayAge/time.Second), joinsReplayBytes))
	const players, last = 10, 5 * time.Second
	gap := func(i int) time.Duration { return []time.Duration{2500 * time.Millisecond, time.Second}[i%2] }
	stream := "joins"
	total := 3*time.Second + players*1750*time.Millisecond + last
	pub := p.startAiortc(t, "aiortc-publisher", "publish", api+"/rtc/v1/whip/?app=live&codec=vp8&stream="+stream,
		strconv.Itoa(int((total+10*time.Second)/time.Second)))
	p.waitPublisher(t, api, stream, 20*time.Second)
	time.Sleep(3 * time.Second) // a GOP that only grows: no keyframe unless asked

	url := api + "/rtc/v1/whep/?app=live&stream=" + stream
	end := time.Now().Add(players*1750*time.Millisecond + last)
	ids, outs := make([]string, players), make([]string, players)
	children := make([]*netnsChild, players)
	known := map[string]bool{}
	for i := range players {
		at := time.Now()
		children[i], outs[i] = p.startPionPlayer(t, url, int(time.Until(end)/time.Second)+1)
		if _, ok := children[i].result("connected", 20*time.Second); !ok {
			t.Fatalf("player %d did not connect", i)
		}
		for _, c := range p.clients(t, api) {
			if c.Stream == stream && !c.Publish && !known[c.ID] {
				known[c.ID], ids[i] = true, c.ID
			}
		}
		time.Sleep(gap(i) - time.Since(at))
	}
	time.Sleep(time.Until(end) - time.Second) // the counters of a second ago, all players still on
	got := map[string]apiClient{}
	for _, c := range p.clients(t, api) {
		got[c.ID] = c
	}
	replays := 0
	for i := range players {
		if err := children[i].wait(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		c, ok := got[ids[i]]
		if !ok || len(c.Quality.Tracks) < 2 {
			t.Errorf("player %d (%q) not in Fanout's list", i, ids[i])
			continue
		}
		checkJoin(t, i, c, readClientRecv(t, outs[i]))
		if c.Quality.JoinGOP > 0 {
			replays++
		}
	}
	// Both kinds of join happened (player 0's GOP is 3 s old).
	if replays == 0 || replays == players-1 {
		t.Errorf("%d of %d joins got a GOP replay, want some and not all but the first", replays, players)
	}
	if err := pub.exited(30 * time.Second); err != nil {
		t.Error(err)
	}
}

// checkJoin checks player i's counters (Fanout's c, its own record r)
// against the replay bound and the loss and NACK limits.
func checkJoin(t *testing.T, i int, c apiClient, r clientRecv) {
	t.Helper()
	q := c.Quality
	a, v := q.Tracks[0], q.Tracks[1]
	span := rtpSpan(r.VideoRTP, int(q.JoinGOP))
	t.Logf("player %d: %d video + %d audio packets, %d replayed (%d of the GOP at the join: %d bytes, %v of video), %d lost, %d NACKed",
		i, v.Packets, a.Packets, q.Replayed, q.JoinGOP, q.JoinGOPB, span, a.Lost+v.Lost, q.NACKs)
	if v.Packets < 40 {
		t.Errorf("player %d: %d video packets", i, v.Packets)
	}
	// The GOP cached at the join: within the bytes bound, and the RTP
	// timestamps of its packets (as the player got them) span at most the
	// age bound (plus 100 ms: the cache ages by arrival, the timestamps are
	// the sender's capture clock).
	if q.JoinGOPB > joinsReplayBytes || span > joinsReplayAge+100*time.Millisecond {
		t.Errorf("player %d: replayed a GOP of %d bytes spanning %v; the bound is %d bytes, %v", i, q.JoinGOPB, span, joinsReplayBytes, joinsReplayAge)
	}
	if n := a.Packets + v.Packets; (a.Lost+v.Lost)*1000 > 5*int64(n) {
		t.Errorf("player %d: lost %d of %d packets (want ≤ 0.5 %%)", i, a.Lost+v.Lost, n)
	}
	if q.NACKs*100 > v.Packets {
		t.Errorf("player %d: NACKed %d of %d video packets (want ≤ 1 %%)", i, q.NACKs, v.Packets)
	}
}

// rtpSpan is the span of the 90 kHz RTP timestamps of the first n distinct
// video packets a player got (the replayed GOP: live video waits for it).
func rtpSpan(pkts [][3]int64, n int) time.Duration {
	seen := map[int64]bool{}
	var first, lo, hi int64
	for _, e := range pkts {
		if len(seen) == n {
			break
		}
		if seen[e[0]] {
			continue // the replay's first packet, sent twice
		}
		seen[e[0]] = true
		d := int64(int32(uint32(e[1]) - uint32(first)))
		if len(seen) == 1 {
			first, d = e[1], 0
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	return time.Duration(hi-lo) * time.Second / 90000
}
