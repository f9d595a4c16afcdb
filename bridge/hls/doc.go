// Package hls serves live hub streams as HLS (MPEG-TS segments) through
// gohlslib's muxer. Every stream that goes live gets a muxer as soon as its
// first key frame arrives (as SRS's hls does), cut at `hls_fragment` and
// keeping `hls_window` worth of segments. The media playlist is served at
// /{app}/{stream}.m3u8 and its segments under /{app}/{stream}/. A playlist
// request may come before the stream: Wait blocks it (bounded by its
// context) until the stream's muxer starts.
//
// Concurrency: one goroutine per stream feeds its muxer from a hub reader;
// Close stops them all and waits. Imported by bridge/httplive.
package hls
