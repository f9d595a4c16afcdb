package flv

import "errors"

// Sentinel errors.
var (
	// ErrBadHeader means the stream does not start with an FLV header.
	ErrBadHeader = errors.New("flv: bad file header")
	// ErrShortTag means a tag or tag body is truncated.
	ErrShortTag = errors.New("flv: truncated tag")
	// ErrTagTooBig means a tag body exceeds the 24-bit size field.
	ErrTagTooBig = errors.New("flv: tag body too big")
	// ErrBadTagSize means a PreviousTagSize does not match its tag.
	ErrBadTagSize = errors.New("flv: PreviousTagSize mismatch")
	// ErrUnsupported means the tag body uses a codec this package does not handle.
	ErrUnsupported = errors.New("flv: unsupported codec")
)
