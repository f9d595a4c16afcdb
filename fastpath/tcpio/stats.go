package tcpio

import "sync/atomic"

// Close reasons: why a connection ended. Control passes one of CloseUnknownSession,
// CloseDuplicate or CloseControl to CloseConn; the others are set here.
const (
	ClosePeer           uint8 = iota // the peer closed it, or a socket error
	CloseBadLength                   // a frame length of 0 or above MaxFrame
	CloseNotBinding                  // the first frame is not a STUN Binding Request
	CloseUnknownSession              // control: the first STUN names no session
	CloseDuplicate                   // control: the session already has a TCP connection (or the pseudo-address is taken)
	CloseControl                     // control: any other reason
	CloseShutdown                    // Server.Close
	CloseIPLimit                     // the source IP has Config.MaxConnsPerIP connections open
	NumCloseReasons
)

var closeReasonNames = [NumCloseReasons]string{
	"peer", "bad_length", "not_binding_request", "unknown_session", "duplicate", "control", "shutdown", "ip_limit",
}

// CloseReasonName is a metric label for a close reason ("" when out of range).
func CloseReasonName(r uint8) string {
	if r >= NumCloseReasons {
		return ""
	}
	return closeReasonNames[r]
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	ConnsOpen  int64  // connections open now
	ConnsTotal uint64 // connections ever opened (accepted or enrolled)

	FramesIn  uint64 // frames delivered to the Sink
	BytesIn   uint64 // their payload bytes (without the length prefix)
	FramesOut uint64 // frames handed to the kernel (or gnet's backlog) by Flush
	BytesOut  uint64 // their bytes, length prefixes included
	Writes    uint64 // write calls issued by Flush: one per connection per Flush that had output

	WriteOverflow uint64 // Write dropped the packet: the connection's pending output was over its bound
	WriteUnknown  uint64 // Write for a peer with no open connection (unknown or closed)

	Closes [NumCloseReasons]uint64 // connections closed, indexed by the Close* reasons
}

// loopCounters are written by one gnet loop goroutine and read by Stats.
type loopCounters struct {
	framesIn, bytesIn   atomic.Uint64
	framesOut, bytesOut atomic.Uint64
	writes              atomic.Uint64
}

// serverCounters are written from any goroutine (rare events only).
type serverCounters struct {
	connsOpen     atomic.Int64
	connsTotal    atomic.Uint64
	writeOverflow atomic.Uint64
	writeUnknown  atomic.Uint64
	closes        [NumCloseReasons]atomic.Uint64
}

// Stats returns a snapshot of the counters; safe from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{
		ConnsOpen:     s.ctr.connsOpen.Load(),
		ConnsTotal:    s.ctr.connsTotal.Load(),
		WriteOverflow: s.ctr.writeOverflow.Load(),
		WriteUnknown:  s.ctr.writeUnknown.Load(),
	}
	for i := range st.Closes {
		st.Closes[i] = s.ctr.closes[i].Load()
	}
	for _, l := range s.loopList() {
		st.FramesIn += l.ctr.framesIn.Load()
		st.BytesIn += l.ctr.bytesIn.Load()
		st.FramesOut += l.ctr.framesOut.Load()
		st.BytesOut += l.ctr.bytesOut.Load()
		st.Writes += l.ctr.writes.Load()
	}
	return st
}
