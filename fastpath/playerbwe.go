package fastpath

import (
	"github.com/fanout/fanout/fastpath/twcc"
	"time"

	"github.com/fanout/fanout/fastpath/bwe"
	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/rtcpx"
)

// Per-player bandwidth estimation from transport-wide feedback. A player
// whose answer negotiated transport-cc (route.Session.TWCCExt, a
// transport-wide extmap and rtcp-fb transport-cc) gets every RTP packet
// stamped with its own transport sequence number in a one-byte header
// extension (RFC 8285 §4.2) written in emitRTP's header rewrite; its
// feedback (RTPFB FMT=15) feeds its fastpath/bwe Estimator, and the
// estimate picks its automatic layer: the highest whose measured rate
// fits. Players without transport-cc keep the RR-loss path (layerauto.go).
//
// Down fast: when the estimate falls under the current layer's rate, the
// player moves at once to the highest layer that fits (one move per
// estDownGap). Up carefully: the estimate may grow above what the player
// receives only up to the next layer's rate × estCeiling (GCC caps it at
// 1.5 × what was acknowledged: an app-limited sender learns nothing above
// that without probing), so a step up is a trial: the player steps up one
// layer when the estimate has passed that layer's rate × estUpMargin, the
// detector is in normal use with loss low, upWait has passed since its
// last step down and estUpGap since its last step up. The first step down
// within estTrialWindow of a step up (a trial that failed) doubles upWait
// (up to autoMaxWait), so a link that cannot carry the layer above is
// tried less and less often (every failed trial costs the player a
// keyframe wait); any other step down (the network changed) sets it back
// to estDownHold.
const (
	estDownGap      = 250 * time.Millisecond
	estDownHold     = 8 * time.Second
	estUpGap        = 2 * time.Second
	estTrialWindow  = 5 * time.Second
	estUpMargin     = 1.1
	estCeiling      = 1.3
	layerRateWindow = 500 * time.Millisecond // layer rate measurement period
	twccExtLen      = 8                      // 0xBEDE, length 1, id/len, seq, pad
	maxTemporalID   = 4
)

// layerRates measures, on a core with players of a stream, the rate of each
// simulcast layer and of each VP9 temporal layer it fans out (bps, smoothed).
type layerRates struct {
	bytes  [route.MaxLayers]uint64
	tbytes [maxTemporalID]uint64
	rate   [route.MaxLayers]float64
	trate  [maxTemporalID]float64
	at     int64
}

// note counts one fanned-out packet (scatter).
func (r *layerRates) note(p *pkt) {
	if p.layers != 0 && paddingOnly(p.data()) {
		return
	}
	if p.layers != 0 && p.layer < route.MaxLayers {
		r.bytes[p.layer] += uint64(p.n)
	}
	if p.tid < maxTemporalID {
		r.tbytes[p.tid] += uint64(p.n)
	}
}

// update turns the bytes counted since the last update into rates.
func (r *layerRates) update(now int64) {
	dt := now - r.at
	if r.at != 0 && dt < int64(layerRateWindow) {
		return
	}
	if r.at != 0 {
		k := 8 * float64(time.Second) / float64(dt)
		for l := range r.bytes {
			r.rate[l] = smoothRate(r.rate[l], float64(r.bytes[l])*k)
		}
		for i := range r.tbytes {
			r.trate[i] = smoothRate(r.trate[i], float64(r.tbytes[i])*k)
		}
	}
	r.bytes, r.tbytes, r.at = [route.MaxLayers]uint64{}, [maxTemporalID]uint64{}, now
}

func smoothRate(old, inst float64) float64 {
	if old == 0 {
		return inst
	}
	return 0.6*old + 0.4*inst
}

// level is the rate of automatic level l (0 = the top) of a source with
// levels levels: a simulcast layer's, or a VP9 stream's with the l highest
// temporal layers dropped (svc.go).
func (r *layerRates) level(l, levels uint8, simulcast bool) float64 {
	if simulcast {
		return r.rate[min(l, route.MaxLayers-1)]
	}
	keep := maxAutoTemporal - min(l, levels-1)
	sum := 0.0
	for tid := range min(keep, maxTemporalID) {
		sum += r.trate[tid]
	}
	return sum
}

// stampInPlace inserts the transport sequence number seq under id into
// the extension-free packet buf[:n], moving its payload up; false (and
// the packet as it was) when it has an extension or no room.
func stampInPlace(buf []byte, n int, id uint8, seq uint16) (int, bool) {
	hl := 12 + 4*int(buf[0]&0x0f)
	if n < 12 || buf[0]&0x10 != 0 || hl > n || n+twccExtLen+64 > len(buf) {
		return n, false
	}
	copy(buf[hl+twccExtLen:], buf[hl:n])
	buf[0] |= 0x10
	e := buf[hl : hl+twccExtLen]
	e[0], e[1], e[2], e[3] = 0xbe, 0xde, 0, 1
	e[4], e[5], e[6], e[7] = id<<4|1, byte(seq>>8), byte(seq), 0
	return n + twccExtLen, true
}

// copyRTP copies pkt into buf for player ps: a kept AV1 dependency
// descriptor under the player's id (copyOut, svcav1.go), and its next
// transport sequence number when it negotiated transport-cc.
func (c *core) copyRTP(ps *route.Session, pst *sessState, buf, pkt []byte) int {
	e := pst.pq.bwe
	if e == nil || ps.TWCCExt == 0 || ps.TWCCExt > 14 {
		return copyOut(buf, pkt, ps.DDExt)
	}
	var n int
	var ok bool
	if pkt[0]&0x10 != 0 && ps.DDExt != 0 {
		n, ok = putTWCCWithDD(buf, pkt, ps.DDExt, ps.TWCCExt, e.Next())
	} else {
		n, ok = stampInPlace(buf, copyOut(buf, pkt, ps.DDExt), ps.TWCCExt, e.Next())
	}
	if ok {
		e.Stamp(n, c.now)
	}
	return n
}

// putTWCCWithDD copies pkt, which holds only a kept descriptor, into buf
// with one extension block: the descriptor under ddID and the transport
// sequence number seq under twccID. Without room it copies it out
// unstamped (false).
func putTWCCWithDD(buf, pkt []byte, ddID, twccID uint8, seq uint16) (int, bool) {
	dd, ok := twcc.FindExtension(pkt, anyExtID(pkt))
	po := payloadOffset(pkt)
	hl := 12 + 4*int(pkt[0]&0x0f)
	if !ok || po < 0 || len(pkt)+2*twccExtLen+64 > len(buf) {
		return copyOut(buf, pkt, ddID), false
	}
	copy(buf, pkt[:hl])
	m := writeExts(buf[hl:], ddID, dd, twccID, []byte{byte(seq >> 8), byte(seq)})
	if m == 0 {
		return copyOut(buf, pkt, ddID), false
	}
	return hl + m + copy(buf[hl+m:], pkt[po:]), true
}

// simulcastPlayer reports whether st plays a simulcast publisher's video.
func (c *core) simulcastPlayer(st *sessState) bool {
	pub := c.tbl.Session(st.out[route.KindVideo].src)
	return pub != nil && pub.Simulcast.N >= 2
}

// estimateDriven reports whether st's layer follows its bandwidth
// estimate (adaptByEstimate) rather than its RR loss (adaptLayer).
func (c *core) estimateDriven(st *sessState) bool {
	return st.pq.bwe != nil && st.pq.bwe.Stats.Feedbacks > 0 && c.simulcastPlayer(st)
}

// onPlayerTWCC feeds a player's transport-wide feedback to its estimator
// and lets the estimate pick its layer.
func (c *core) onPlayerTWCC(s *route.Session, st *sessState, p []byte) {
	e := st.pq.bwe
	if e == nil {
		return
	}
	_, _, _, fci, ok := rtcpx.ParseFeedback(p)
	if !ok || !e.OnFeedback(fci, c.now) {
		c.cnt.drops[DropRTCPMalformed].Add(1)
		return
	}
	c.cnt.twccIn.Add(1)
	c.adaptByEstimate(s, st, e)
}

// adaptByEstimate moves player s's automatic layer cap by its estimate.
func (c *core) adaptByEstimate(s *route.Session, st *sessState, e *bwe.Estimator) {
	a := &st.lay.auto
	levels := c.autoLevels(st)
	v := c.view(s.Stream)
	if !s.LayerAuto || levels < 2 || v == nil {
		e.Ceiling = 0
		return
	}
	if a.upWait == 0 {
		a.upWait = int64(estDownHold)
	}
	if !c.simulcastPlayer(st) {
		// SVC temporal caps stay on the RR-loss path (layerauto.go): on a
		// loaded host the delay trend alone cut uncongested VP9/AV1 players
		// to T0 (TestSVCChromium).
		e.Ceiling = 0
		return
	}
	r := &v.rates
	r.update(c.now)
	const sim = true
	a.floor = min(a.floor, levels-1)
	est, cur := e.Estimate(), a.floor
	switch {
	case cur+1 < levels && est < r.level(cur, levels, sim) && e.LastDecrease() != 0 &&
		(a.lastMove == 0 || c.now-a.lastMove >= int64(estDownGap)):
		// Only an estimate congestion has cut says the layer does not fit:
		// before that it is the start rate growing towards what the
		// player receives, and would move every new player down.
		to := cur + 1
		for to+1 < levels && r.level(to, levels, sim) > est {
			to++
		}
		if a.lastUp > a.lastDown && c.now-a.lastUp < int64(estTrialWindow) {
			a.upWait = min(2*a.upWait, int64(autoMaxWait)) // the step up did not fit
		} else {
			a.upWait = int64(estDownHold) // the network changed
		}
		a.floor, a.lastMove, a.lastDown = to, c.now, c.now
		a.downs++
	case cur > 0 && est >= estUpMargin*r.level(cur-1, levels, sim) && e.Usage() == bwe.Normal &&
		e.Loss() < 0.02 && c.now-a.lastDown >= a.upWait && c.now-a.lastMove >= int64(estUpGap):
		a.floor--
		a.lastMove, a.lastUp = c.now, c.now
		a.ups++
	}
	e.Ceiling = 0
	if a.floor > 0 {
		e.Ceiling = estCeiling * r.level(a.floor-1, levels, sim)
	}
}

// resendShare is the share of a player's estimate its NACK resends may
// take: a congested player NACKs most of what it lost, and resends at
// several times the stream's rate (resend.go) would keep the link
// congested after its layer went down; resendMinBurst still lets the
// lost packets of a low layer's keyframe go out at once after a switch.
const (
	resendShare    = 0.5
	resendMinBurst = 16 << 10
)

// resendCap bounds a player's resend budget (bytes/s, bytes) by its
// bandwidth estimate, once it has one.
func (pq *playerQ) resendCap(rate, burst int64) (int64, int64) {
	e := pq.bwe
	if e == nil || e.Stats.Feedbacks == 0 {
		return rate, burst
	}
	capRate := max(int64(e.Estimate()*resendShare/8), 2<<10)
	if capRate >= rate {
		return rate, burst
	}
	return capRate, min(burst, max(capRate*int64(resendBurst)/int64(time.Second), resendMinBurst))
}

// playerEstimate is a player's bandwidth estimate in bps, 0 without one.
func (pq *playerQ) estimate() uint64 {
	if pq.bwe == nil {
		return 0
	}
	return uint64(pq.bwe.Estimate())
}
