package conf

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error returned by Load, Parse and Default is an
// *Error whose chain contains exactly one of these.
var (
	// ErrSyntax: the file is not valid nginx-like syntax (unbalanced braces,
	// a "}" right after arguments, a block without a name, premature EOF).
	ErrSyntax = errors.New("syntax error")
	// ErrValue: a known directive (or its SRS_* environment override) has a
	// value Fanout cannot use, e.g. `listen abc;` or `nack maybe;`.
	ErrValue = errors.New("bad value")
	// ErrInclude: an include could not be read, nests too deep, or loops.
	ErrInclude = errors.New("include failed")
	// ErrRead: the config file itself could not be read.
	ErrRead = errors.New("cannot read config")
)

var (
	errNotRegular = errors.New("not a regular file")
	errTooBig     = errors.New("file larger than 4 MiB")
)

// errFallback marks a value that SRS accepts but replaces by its default
// (pli_for_rtmp out of 0.5–30 s, bitrates out of 8000–320000). The setter has
// already stored the default; the mapper turns this into a warning.
var errFallback = errors.New("out of range")

// Error is a configuration error located in a file (File, Line) or in the
// environment (File "env", Line 0, Directive the variable name).
type Error struct {
	File      string // config file name, "env" for an SRS_* override
	Line      int    // 1-based line, 0 when unknown
	Directive string // directive path ("rtc_server.listen") or env variable
	Err       error  // wraps one of the sentinels above
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Directive == "" {
		return fmt.Sprintf("%s: %v", loc, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", loc, e.Directive, e.Err)
}

// Unwrap returns the wrapped error, whose chain holds the sentinel.
func (e *Error) Unwrap() error { return e.Err }
