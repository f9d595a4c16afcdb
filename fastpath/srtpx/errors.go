package srtpx

import "errors"

var (
	// ErrProfile is returned by NewSender for a protection profile it does not support.
	ErrProfile = errors.New("srtpx: unsupported SRTP protection profile")
	// ErrKeyLength is returned by NewSender for a master key or salt of the wrong length.
	ErrKeyLength = errors.New("srtpx: master key or salt has the wrong length")
	// ErrHeader is returned by Protect for a packet that is not a complete RTP header
	// (version 2, its CSRCs and its header extension) followed by a payload.
	ErrHeader = errors.New("srtpx: malformed RTP header")
	// ErrBuffer is returned by Protect when n exceeds len(buf) or the capacity of buf
	// has no room for the tag.
	ErrBuffer = errors.New("srtpx: buffer too small")
)
