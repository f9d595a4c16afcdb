package rtmp

import "errors"

// Sentinel errors.
var (
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("rtmp: server closed")
	// ErrBadURL means the publish or play URL has no app or stream name.
	ErrBadURL = errors.New("rtmp: URL needs /app/stream")
	// ErrBadConnect means the connect, publish or play command was
	// malformed (no tcUrl, no stream name, a command before connect).
	ErrBadConnect = errors.New("rtmp: invalid connect command")
	// ErrNoTracks means a publisher sent neither H.264 nor AAC.
	ErrNoTracks = errors.New("rtmp: no H.264 or AAC track")
)
