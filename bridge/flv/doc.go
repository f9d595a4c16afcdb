// Package flv writes and reads the FLV container (Adobe FLV v10.1, annex E):
// the file header, tags with their PreviousTagSize trailers, and the H.264
// and AAC tag bodies. It is hand-written because no maintained Go FLV muxer
// exists; gortmplib only has the RTMP message bodies.
//
// UnitWriter turns hub units into an FLV byte stream for HTTP-FLV: the
// sequence headers come first, video starts at a key frame and timestamps
// start at zero. The reader side (Reader, ParseVideo, ParseAudio) exists for
// tests and fuzzing and rejects malformed input with an error, never a panic.
//
// Imported by bridge/httplive. Values are not safe for concurrent use.
package flv
