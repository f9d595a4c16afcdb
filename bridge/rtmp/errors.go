package rtmp

import "errors"

// Sentinel errors.
var (
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("rtmp: server closed")
	// ErrBadURL means the publish or play URL has no app or stream name.
	ErrBadURL = errors.New("rtmp: URL needs /app/stream")
	// ErrNoTracks means a publisher sent neither H.264 nor AAC.
	ErrNoTracks = errors.New("rtmp: no H.264 or AAC track")
)
