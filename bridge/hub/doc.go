// Package hub is the in-process registry of live streams that the bridge's
// protocols meet at: the RTMP server and the WebRTC ingest publish into it;
// RTMP players, HTTP-FLV, HLS and the rtmp_to_rtc bridge read from it.
//
// A stream is keyed by vhost/app/stream (Key) and carries timestamped access
// units (Unit): H.264 NAL units (no start codes, no length prefixes) and AAC
// or Opus frames. Every H.264 key unit carries its SPS and PPS in-band, so a
// reader can build decoder configuration from the first key unit it sees.
//
// Concurrency: each stream has one owner goroutine that fans units out to its
// readers (mediamtx style). Publisher.Write never blocks: when the owner's
// inbox is full the unit is dropped and counted. Every reader has a bounded
// queue; a slow reader loses units (counted in Reader.Dropped) and never
// stalls the publisher or other readers. A small GOP cache lets a new reader
// start at the last key frame. A reader may ask for a stream before it is
// published (SubscribeWait): it waits on a Waitlist channel that Publish
// closes, bounded by its context, with no goroutine or poll of its own.
// Before it waits, Config.Want is told (cmd opens a relay from the node
// that owns the stream, issue 17), so edge players of RTMP, HTTP-FLV and
// HLS are served from the relayed stream.
//
// Imported by the bridge packages only; cmd reaches it through bridge.
package hub
