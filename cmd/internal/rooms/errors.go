package rooms

import "errors"

// Errors a request can fail with; their text goes back in msg.error.
var (
	ErrBadRequest = errors.New("bad request")
	ErrRoomFull   = errors.New("room is full")
	ErrNameTaken  = errors.New("display name is taken in this room")
	ErrNotJoined  = errors.New("join a room first")
	ErrJoined     = errors.New("already in a room")
	ErrTooMany    = errors.New("too many rooms")
)
