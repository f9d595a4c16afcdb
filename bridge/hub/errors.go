package hub

import "errors"

// Sentinel errors returned by the hub.
var (
	// ErrStreamBusy means the stream is already being published.
	ErrStreamBusy = errors.New("hub: stream already published")
	// ErrNotFound means no stream is live under the key.
	ErrNotFound = errors.New("hub: stream not found")
	// ErrClosed means the hub or the stream has been closed.
	ErrClosed = errors.New("hub: closed")
)
