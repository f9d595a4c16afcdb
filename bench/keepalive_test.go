package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// seededRnd is a deterministic uniform source in [0, n) for the keepalive
// schedule.
func seededRnd() func(n int64) int64 {
	return rand.New(rand.NewPCG(1, 2)).Int64N
}

// TestKeepaliveSchedule checks the schedule's pure functions: the first
// keepalive is uniform over the first interval, later ones fall within
// keepaliveEvery ± 10 % and use the whole range.
func TestKeepaliveSchedule(t *testing.T) {
	rnd := seededRnd()
	const now, draws, deciles = int64(1e12), 20000, 10
	var hist [deciles]int
	for range draws {
		at := firstKeepalive(now, rnd)
		if at < now || at >= now+int64(keepaliveEvery) {
			t.Fatalf("first keepalive %v after now, want in [0, %v)", time.Duration(at-now), keepaliveEvery)
		}
		hist[(at-now)*deciles/int64(keepaliveEvery)]++
	}
	for i, n := range hist {
		if n < draws/deciles*8/10 || n > draws/deciles*12/10 {
			t.Fatalf("first keepalives per tenth of the interval %v: tenth %d has %d, want about %d", hist, i, n, draws/deciles)
		}
	}
	lo, hi := int64(keepaliveEvery-keepaliveJitter), int64(keepaliveEvery+keepaliveJitter)
	minGap, maxGap := hi, lo
	for range draws {
		gap := nextKeepalive(now, rnd) - now
		if gap < lo || gap > hi {
			t.Fatalf("next keepalive after %v, want %v ± %v", time.Duration(gap), keepaliveEvery, keepaliveJitter)
		}
		minGap, maxGap = min(minGap, gap), max(maxGap, gap)
	}
	if spread := time.Duration(maxGap - minGap); spread < 2*keepaliveJitter*95/100 {
		t.Fatalf("next keepalives spread over %v only, want about %v", spread, 2*keepaliveJitter)
	}
}

// sweepSubs puts n subscribers in phase into rd's slots, without sockets:
// their keepalives are counted, and written to fd -1.
func sweepSubs(rd *reader, n int, phase int32) []*subscriber {
	subs := make([]*subscriber, n)
	for i := range subs {
		subs[i] = &subscriber{id: i, fd: -1}
		subs[i].phase.Store(phase)
		slot := rd.nslots.Add(1) - 1
		rd.slots[slot].Store(subs[i])
	}
	return subs
}

// TestSweepSpreadsKeepalives runs the keepalive sweep on a virtual clock
// (one sweep per sweepEvery) for 1000 subscribers that got past ICE at the
// same instant, stalls the loop for 5 s, and checks that keepalives stay
// spread: never more than maxKeepalivesPerSweep at once, the backlog of a
// stall sent over the next sweeps, no burst when they fall due again, each
// subscriber served every 2 s ± 10 % (plus the sweep period), and none for
// a subscriber still in ICE.
func TestSweepSpreadsKeepalives(t *testing.T) {
	const n = 1000
	rd, err := newReader(readerConfig{capacity: n + 10})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.ep.close()
	rd.rnd = seededRnd()
	subs := sweepSubs(rd, n, phaseDTLS)
	ice := sweepSubs(rd, 10, phaseICE)
	now := int64(1e12)
	sent := make([]int64, n+len(ice)) // slot → last keepalive
	count := make([]int, n+len(ice))
	sweep := func() int {
		before := rd.c[ctrKeepalive]
		due := make([]int64, len(sent))
		for i := range due {
			due[i] = rd.slots[i].Load().nextKA
		}
		rd.sweep(now)
		for i := range due {
			if s := rd.slots[i].Load(); s.nextKA != due[i] && due[i] != 0 {
				if sent[i] != 0 {
					gap := time.Duration(now - sent[i])
					if gap < keepaliveEvery-keepaliveJitter || gap > keepaliveEvery+keepaliveJitter+sweepEvery {
						t.Fatalf("subscriber %d: keepalives %v apart, want %v ± %v", i, gap, keepaliveEvery, keepaliveJitter)
					}
				}
				sent[i] = now
				count[i]++
			}
		}
		return int(rd.c[ctrKeepalive] - before)
	}
	run := func(d time.Duration) (maxSweep, total int) {
		for end := now + int64(d); now < end; now += int64(sweepEvery) {
			k := sweep()
			maxSweep, total = max(maxSweep, k), total+k
		}
		return
	}
	// Past ICE together: the first keepalives spread over the first 2 s.
	if peak, total := run(keepaliveEvery); peak > 20 || total < n*9/10 {
		t.Fatalf("first interval: %d keepalives, up to %d in one sweep", total, peak)
	}
	run(8 * time.Second)
	for i, s := range subs {
		if count[i] < 4 || count[i] > 6 {
			t.Fatalf("subscriber %d: %d keepalives in 10 s", s.id, count[i])
		}
	}
	// A stalled loop: all of them are due at the next sweep.
	now += int64(5 * time.Second)
	clear(sent)
	var backlog []int
	for range (n + maxKeepalivesPerSweep - 1) / maxKeepalivesPerSweep {
		backlog = append(backlog, sweep())
		now += int64(sweepEvery)
	}
	if want := []int{256, 256, 256, 232}; !slices.Equal(backlog, want) {
		t.Fatalf("after the stall the sweeps sent %v, want %v", backlog, want)
	}
	// They fall due again spread by the jitter over about 400 ms, not as
	// the same bursts of 256 (what a fixed interval would repeat).
	peak1, total1 := run(keepaliveEvery + keepaliveJitter)
	peak2, total2 := run(3 * keepaliveEvery)
	t.Logf("after the stall: backlog %v; next interval up to %d per sweep (%d in all), then up to %d (%d)",
		backlog, peak1, total1, peak2, total2)
	if peak1 > 64 || peak2 > 64 || total1 != n || total2 < 2*n {
		t.Fatalf("after the stall: up to %d then %d keepalives in one sweep (%d, %d in all)", peak1, peak2, total1, total2)
	}
	for i := range ice {
		if count[n+i] != 0 || rd.slots[n+i].Load().nextKA != 0 {
			t.Fatalf("subscriber in ICE got %d keepalives", count[n+i])
		}
	}
}
