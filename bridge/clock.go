package bridge

import "time"

// rtpClock maps one track's RTP timestamps to stream time. It starts from
// the SDP clock rate at once, anchored at the first packet's arrival, and is
// re-anchored by each RTCP SR onto the sender's NTP clock (shared by the
// tracks of one ingest, which gives A/V sync). SRS instead drops every
// packet until the second SR (srs-reference 4.10).
type rtpClock struct {
	rate    int64
	started bool
	last    uint32
	ext     int64 // extended timestamp of last
	anchor  int64 // extended RTP timestamp of the anchor
	at      time.Duration
	lastOut time.Duration
}

// extend unwraps ts against the last seen timestamp (RFC 3550 A.1 style);
// advance records it as the new last.
func (c *rtpClock) extend(ts uint32, advance bool) int64 {
	if !c.started {
		return int64(ts)
	}
	e := c.ext + int64(int32(ts-c.last))
	if advance && e > c.ext {
		c.last, c.ext = ts, e
	}
	return e
}

// observe notes a packet's timestamp; the first one anchors the clock at
// arrival (stream time).
func (c *rtpClock) observe(ts uint32, arrival time.Duration) {
	if c.started {
		c.extend(ts, true)
		return
	}
	c.started, c.last, c.ext, c.anchor, c.at = true, ts, int64(ts), int64(ts), arrival
}

// time returns the stream time of ts, never earlier than the last result.
func (c *rtpClock) time(ts uint32) time.Duration {
	e := c.extend(ts, false)
	d := c.at + time.Duration((e-c.anchor)*int64(time.Second)/c.rate)
	if d < c.lastOut {
		d = c.lastOut
	}
	c.lastOut = d
	return d
}

// sync re-anchors the clock: RTP timestamp ts was sampled at stream time at.
func (c *rtpClock) sync(ts uint32, at time.Duration) {
	if !c.started {
		c.started, c.last, c.ext = true, ts, int64(ts)
	}
	c.anchor, c.at = c.extend(ts, false), at
}

// ntpDuration converts a 64-bit NTP timestamp to a duration since 1900.
func ntpDuration(ntp uint64) time.Duration {
	sec, frac := int64(ntp>>32), int64(ntp&0xFFFFFFFF)
	return time.Duration(sec)*time.Second + time.Duration(frac*int64(time.Second)>>32)
}
