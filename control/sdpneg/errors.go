package sdpneg

import "errors"

var (
	// ErrMalformed marks an offer that cannot be parsed, has no m-line, or
	// has an m-line without a valid a=mid. The HTTP layer answers 400.
	ErrMalformed = errors.New("malformed sdp offer")

	// ErrUnsupported marks a well-formed offer that Fanout will not accept
	// (no BUNDLE, no rtcp-mux, a data channel, a wrong direction, no
	// supported codec, more than one audio or video m-line). It is always
	// wrapped with a one-line reason. The HTTP layer answers 422.
	ErrUnsupported = errors.New("unsupported sdp offer")

	// ErrAnswerParams marks AnswerParams that cannot be written into an
	// answer (a value with a line break or a space where a token is
	// required, a Play flag that contradicts the negotiation). It is a bug
	// in the caller, not bad input from the peer: the HTTP layer answers 500.
	ErrAnswerParams = errors.New("invalid answer parameters")
)
