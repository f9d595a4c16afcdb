package bench

import "errors"

// Sentinel errors of package bench.
var (
	ErrNoCandidate    = errors.New("no usable UDP candidate in answer")
	ErrNoICE          = errors.New("no ice-ufrag/ice-pwd in answer")
	ErrHTTPStatus     = errors.New("unexpected HTTP status")
	ErrTimeout        = errors.New("timed out")
	ErrFingerprint    = errors.New("DTLS certificate fingerprint mismatch")
	ErrNoSRTPProfile  = errors.New("no SRTP protection profile negotiated")
	ErrBadStat        = errors.New("malformed /proc stat line")
	ErrConfig         = errors.New("invalid configuration")
	ErrClosed         = errors.New("closed")
	ErrNoSubscribers  = errors.New("no subscriber connected")
	ErrPublisherState = errors.New("publisher did not connect")
	// ErrSinkPermission means the kernel refused to load the -sink socket
	// filter: loading eBPF needs CAP_BPF (root) unless
	// kernel.unprivileged_bpf_disabled is 0.
	ErrSinkPermission = errors.New("-sink: permission denied: its eBPF socket filter needs CAP_BPF (run as root)")
)
