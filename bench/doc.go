// Package bench owns fanout-bench: the load generator and measuring tool that
// makes every speed claim about Fanout, and about any other WHIP/WHEP server
// reached by URL (SRS, mediamtx, the pion relay in bench/pionrelay).
//
// It holds:
//   - the WHIP publisher (pion/webrtc) with a synthetic H.264+Opus RTP source
//     that stamps its send time into each payload, or ffmpeg-made files;
//   - lightweight WHEP subscribers: a hand-built recvonly offer, ICE (STUN
//     binding), a pion/dtls client and SRTP keys, after which the socket is
//     read by a recvmmsg+epoll loop that serves hundreds of sockets per core,
//     blocking in epoll_wait or, with -rx-poll, polling with a sleep between
//     empty rounds so the server's sends wake no bench thread;
//   - the sink (-sink, capacity mode): as soon as a subscriber is connected
//     and has seen its first keyframe, its reader switches it to an eBPF
//     socket filter that counts its RTP media and drops it unqueued, so a
//     connect storm is not read in user space;
//   - the receive accounting (packets, sequence gaps, loss, jitter, sampled
//     SRTP authentication, latency on one clock, time to connect and to the
//     first keyframe);
//   - server accounting (/proc/PID/stat, Prometheus /metrics), CPU pinning;
//   - several nodes (nodes.go): a list of WHEP URLs served round-robin and
//     a list of server processes, with packets, loss and CPU per node;
//   - the modes fixed, ramp, sweep and floor (bare GCM + sendmmsg), and the
//     outputs: JSON, a text table, a PNG plot and Markdown reports.
//
// Concurrency: each receive loop (reader) is one goroutine locked to an OS
// thread that owns the per-subscriber counters it touches and the sockets
// in its epoll set: it alone switches a subscriber to the sink. Other
// goroutines only read the counters it publishes atomically once per batch,
// and ask for a switch, or see one done, through the subscriber's atomic
// flags (sinkNow, sunk). The counters of a window edge are read on the
// publisher's goroutine just before a video frame (Publisher.AtFrameEdge). Every
// goroutine the package starts is stopped and waited for by Run (or by
// Close on the type that started it).
package bench
