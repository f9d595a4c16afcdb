package bwe

import "time"

// The delay-based detector: packets are grouped by send time (a burst of
// 5 ms is one group, draft-ietf-rmcat-gcc-02 §5.2); each completed group
// gives a delay variation d = (arrival delta) − (send delta) between it and
// the group before. The accumulated, smoothed variation against arrival
// time is fitted with a line over the last window groups; its slope (the
// queue growing or draining) times the number of deltas and the gain is
// compared with a threshold that adapts to the noise (§5.4), as libwebrtc's
// TrendlineEstimator does.

// onArrival takes one acknowledged packet: sent at sendAt on our clock,
// arrived at at on the player's (both ns).
func (e *Estimator) onArrival(sendAt, at int64) {
	if !e.cur.ok {
		e.cur = group{firstSend: sendAt, lastSend: sendAt, lastArrival: at, ok: true}
		return
	}
	if sendAt < e.cur.firstSend {
		return // reordered into an older group: GCC ignores it too
	}
	if sendAt-e.cur.firstSend <= int64(burstTime) {
		e.cur.lastSend = max(e.cur.lastSend, sendAt)
		e.cur.lastArrival = max(e.cur.lastArrival, at)
		return
	}
	if e.prev.ok {
		sendDelta := float64(e.cur.lastSend-e.prev.lastSend) / float64(time.Millisecond)
		arrDelta := float64(e.cur.lastArrival-e.prev.lastArrival) / float64(time.Millisecond)
		e.update(arrDelta-sendDelta, sendDelta, e.cur.lastArrival)
	}
	e.prev = e.cur
	e.cur = group{firstSend: sendAt, lastSend: sendAt, lastArrival: at, ok: true}
}

// update feeds one group's delay variation (ms) to the trendline.
func (e *Estimator) update(delta, sendDelta float64, arrival int64) {
	if e.deltas == 0 {
		e.firstArrival = arrival
	}
	e.deltas = min(e.deltas+1, 1000)
	e.acc += delta
	e.smooth = smoothing*e.smooth + (1-smoothing)*e.acc
	e.hx[e.hi] = float64(arrival-e.firstArrival) / float64(time.Millisecond)
	e.hy[e.hi] = e.smooth
	e.hi = (e.hi + 1) % window
	if e.hn < window {
		e.hn++
		return
	}
	trend := e.slope()
	e.detect(trend, sendDelta, arrival)
}

// slope is the least-squares slope of the window's points.
func (e *Estimator) slope() float64 {
	var sx, sy float64
	for i := range window {
		sx += e.hx[i]
		sy += e.hy[i]
	}
	mx, my := sx/window, sy/window
	var num, den float64
	for i := range window {
		num += (e.hx[i] - mx) * (e.hy[i] - my)
		den += (e.hx[i] - mx) * (e.hx[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// detect compares the modified trend with the adaptive threshold (§5.4).
func (e *Estimator) detect(trend, sendDelta float64, arrival int64) {
	modified := float64(min(e.deltas, 60)) * trend * gain
	switch {
	case modified > e.threshold:
		e.overuseTime += sendDelta
		e.overuseCount++
		if e.overuseTime > overuseMs && e.overuseCount > 1 && trend >= e.prevTrend {
			e.overuseTime, e.overuseCount = 0, 0
			if e.usage != Overuse {
				e.Stats.Overuses++
			}
			e.usage = Overuse
		}
	case modified < -e.threshold:
		e.overuseTime, e.overuseCount = 0, 0
		e.usage = Underuse
	default:
		e.overuseTime, e.overuseCount = 0, 0
		e.usage = Normal
	}
	e.prevTrend = trend
	e.adaptThreshold(modified, arrival)
}

// adaptThreshold moves the threshold towards |modified| (§5.4: faster
// down than up, and not for outliers), within [6, 600].
func (e *Estimator) adaptThreshold(modified float64, arrival int64) {
	if e.lastThreshold == 0 {
		e.lastThreshold = arrival
	}
	abs := modified
	if abs < 0 {
		abs = -abs
	}
	if abs > e.threshold+15 {
		e.lastThreshold = arrival
		return
	}
	k := 0.0087
	if abs < e.threshold {
		k = 0.039
	}
	dt := min(float64(arrival-e.lastThreshold)/float64(time.Millisecond), 100)
	e.threshold = min(max(e.threshold+k*(abs-e.threshold)*dt, 6), 600)
	e.lastThreshold = arrival
}
