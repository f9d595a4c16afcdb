package srtpx

// ROC tracks a sender's rollover counter for one SSRC (RFC 3711 §3.3.1).
// The zero value is ready: the first sequence number sent has ROC 0.
type ROC struct {
	highest uint16 // highest sequence number sent, in RTP order
	roc     uint32 // the rollover counter of highest
	started bool
}

// Next is called with each sequence number about to be sent, in send order,
// including retransmissions of older packets, and returns the ROC to protect
// it with. A number ahead of the highest sent (by 1 to 32767, modulo 2^16)
// that is numerically smaller has wrapped: the ROC grows by one and it
// becomes the highest. An older number (a retransmission) that is
// numerically larger than the highest was sent before the last wrap and
// takes the previous ROC (never below 0). This is the index a receiver
// estimates (RFC 3711 §3.3.1 and Appendix A; libsrtp, pion, browsers) for
// any number within 32767 of the highest it has seen. A number exactly
// 32768 behind is taken as older; receivers disagree about it, so do not
// retransmit that far back (a NACK history is much shorter).
func (r *ROC) Next(seq uint16) uint32 {
	switch {
	case !r.started:
		r.started, r.highest = true, seq
	case int16(seq-r.highest) > 0:
		if seq < r.highest {
			r.roc++
		}
		r.highest = seq
	case seq > r.highest && r.roc > 0:
		return r.roc - 1
	}
	return r.roc
}
