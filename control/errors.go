package control

import "errors"

// Sentinel errors.
var (
	errNoCertificate = errors.New("dtls: peer sent no certificate")
	errFingerprint   = errors.New("dtls: certificate does not match a=fingerprint")
	errNoSRTPProfile = errors.New("dtls: no SRTP protection profile negotiated")

	// ErrStreamBusy is returned when a stream already has a publisher.
	ErrStreamBusy = errors.New("stream busy: it already has a publisher")
	// ErrNotFound is returned for an unknown session.
	ErrNotFound = errors.New("session not found")
	// ErrRTCDisabled is returned when RTC is off for the vhost.
	ErrRTCDisabled = errors.New("rtc is disabled for this vhost")
	// ErrDraining is returned for new sessions once Drain or Close began.
	ErrDraining = errors.New("server is draining for shutdown")

	errHookRefused = errors.New("hook refused the session")
)
