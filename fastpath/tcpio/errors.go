package tcpio

import "errors"

var (
	// ErrClosed is returned by Start and Enroll after Close.
	ErrClosed = errors.New("tcp: server closed")
	// ErrNotStarted is returned by Enroll before Start.
	ErrNotStarted = errors.New("tcp: server not started")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("tcp: server already started")
	// ErrNotTCPConn is returned by Enroll for a net.Conn that is not a TCP socket.
	ErrNotTCPConn = errors.New("tcp: not a TCP connection")
)
