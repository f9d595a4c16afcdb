package fastpath

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// TestLayerAuto walks a player without a pinned layer through the RR-loss
// estimator: heavy loss moves it down one layer per report (not faster
// than autoDownGap) to the lowest, clean reports move it up after upWait,
// loss right after a step up doubles upWait (no flapping), and the
// fastpath then sends it the capped layer's packets.
func TestLayerAuto(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 1, layers: 3, auto: true})
	buf := make([]byte, 1500)
	for i := range 3 {
		r.drive(0, r.nextLayer(buf, i))
	}
	c := r.e.cores[0]
	st := &c.sess[2]
	s := r.e.table.Load().Session(2)
	if st.lay.cur != 0 {
		t.Fatalf("auto player starts on layer %d, want the highest", st.lay.cur)
	}
	base := c.now
	step := func(at time.Duration, lost uint8, want uint8) {
		t.Helper()
		c.now = base + int64(at)
		c.adaptLayer(s, st, lost)
		if st.lay.auto.floor != want {
			t.Fatalf("at %v with loss %d/256: cap %d, want %d", at, lost, st.lay.auto.floor, want)
		}
	}
	step(time.Second, 60, 1)           // congested: one down at once
	step(1200*time.Millisecond, 60, 1) // not faster than autoDownGap
	step(2*time.Second, 60, 2)         // still congested: the lowest
	step(3*time.Second, 60, 2)         // nothing lower
	step(4*time.Second, 10, 2)         // in between: neither way
	step(5*time.Second, 0, 2)          // clean since the last report (4 s)
	step(8*time.Second, 0, 2)          // not yet autoFirstWait
	step(9*time.Second, 0, 1)          // 5 s clean: one up
	step(10*time.Second, 80, 2)        // the step up did not fit
	if w := time.Duration(st.lay.auto.upWait); w != 2*autoFirstWait {
		t.Fatalf("upWait %v after a failed step up, want %v", w, 2*autoFirstWait)
	}
	step(11*time.Second, 0, 2) // clean since 10 s
	step(19*time.Second, 0, 2) // 9 s clean: not yet 10
	step(20*time.Second, 0, 1)
	step(29*time.Second, 0, 1) // the next step up waits upWait again
	step(30*time.Second, 0, 0)
	if a := st.lay.auto; a.downs != 3 || a.ups != 3 {
		t.Errorf("downs %d ups %d, want 3 and 3", a.downs, a.ups)
	}

	// The cap applies at the next keyframe of the capped layer.
	st.lay.auto.floor = 2
	readLayers(t, r, r.players[0], 0)
	for i := range 6 {
		r.drive(0, r.nextLayer(buf, i%3))
	}
	got := readLayers(t, r, r.players[0], 0)
	// A move down forced by the cap stops h at once (its backlog would
	// congest the keyframe of l): only l's packets, from its keyframe.
	if len(got) != 2 || (got[0]-1)%3 != 2 || (got[1]-1)%3 != 2 {
		t.Fatalf("capped to layer l, the player got packets %v (publisher counter, layer = (n-1)%%3)", got)
	}
	zeroAllocs(t, "adaptLayer", func() { c.adaptLayer(s, st, 0) })
}

// TestSwitchKeyframeResend: the packets of the keyframe a layer switch
// started at are resent outside the player's empty resend budget, within
// switchKeyWindow, still not twice within an RTT; other packets wait for
// the budget.
func TestSwitchKeyframeResend(t *testing.T) {
	c := &core{now: int64(time.Hour)}
	st := &sessState{}
	st.lay.keyTS, st.lay.keyAt = 9000, c.now
	key, other := make([]byte, 1200), make([]byte, 1200)
	binary.BigEndian.PutUint32(key[4:], 9000)
	binary.BigEndian.PutUint32(other[4:], 12000)
	st.pq.budget.tokAt, st.pq.budget.tokens = c.now, 0
	c.now += int64(time.Millisecond)
	if !c.switchKeyframe(st, key) || c.switchKeyframe(st, other) {
		t.Fatal("switchKeyframe does not tell the switch keyframe's packets from others")
	}
	if c.allowResend(st, route.KindVideo, 7, len(other), c.switchKeyframe(st, other)) {
		t.Error("a packet over the empty budget was resent")
	}
	for seq := range uint16(20) {
		if !c.allowResend(st, route.KindVideo, 100+seq, len(key), c.switchKeyframe(st, key)) {
			t.Fatalf("switch keyframe packet %d not resent over the empty budget", seq)
		}
	}
	if c.allowResend(st, route.KindVideo, 100, len(key), true) {
		t.Error("a switch keyframe packet resent twice within the RTT floor")
	}
	c.now += int64(switchKeyWindow)
	if c.switchKeyframe(st, key) {
		t.Error("the switch keyframe still favoured after switchKeyWindow")
	}
	if n := c.cnt.resendForced.Load(); n != 20 {
		t.Errorf("resendForced %d, want 20", n)
	}
}
