package bridge

import "errors"

// Sentinel errors.
var (
	// ErrClosed means the bridge, player or ingest has been closed.
	ErrClosed = errors.New("bridge: closed")
	// ErrNoVideo means rtmp_to_rtc found no H.264 track to send.
	ErrNoVideo = errors.New("bridge: stream has no H.264 video")
	// ErrBadRTP means an RTP packet could not be parsed.
	ErrBadRTP = errors.New("bridge: malformed RTP packet")
	// ErrUnknownKind means a packet's kind is neither audio nor video.
	ErrUnknownKind = errors.New("bridge: unknown media kind")
)
