// Package sdpneg owns Fanout's SDP offer/answer: it parses a WHIP/WHEP (or
// legacy /rtc/v1/) offer with pion/sdp, validates it the way SRS does, picks
// one codec per m-line, and builds the ICE-lite answer in SRS's exact shape.
//
// Only package control imports it. sdpneg does not import control: the
// candidates it writes are its own Candidate type, field-for-field identical
// to candidate.Candidate so that control converts one to the other.
//
// Concurrency: every function is pure; an Offer or Negotiated value may be
// read from many goroutines but is not modified after it is returned.
//
// Errors are classified for the HTTP layer: errors.Is(err, ErrMalformed) is
// 400, errors.Is(err, ErrUnsupported) is 422 and the wrapped text is the
// one-line reason.
package sdpneg
