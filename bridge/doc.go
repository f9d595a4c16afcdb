// Package bridge connects Fanout's WebRTC side to RTMP, HTTP-FLV and HLS,
// the way SRS's rtmp_to_rtc and rtc_to_rtmp do. It owns:
//
//   - the hub of live streams (bridge/hub) that every protocol meets at;
//   - the RTMP server (bridge/rtmp), HTTP-FLV and HLS (bridge/httplive,
//     bridge/flv, bridge/hls);
//   - rtmp_to_rtc (RTCPlayer): H.264 repacketized for WebRTC (bridge/rtph264)
//     and AAC transcoded to Opus (bridge/transcode) into an RTPWriter;
//   - rtc_to_rtmp (RTCIngest): plaintext RTP from a WebRTC publisher
//     depacketized, Opus transcoded to AAC, and published to the hub, with
//     timestamps from the SDP clock at once (refined by RTCP SR), and
//     periodic key frame requests through a KeyframeRequester;
//   - the bounded worker pool that runs the transcoders.
//
// cmd imports bridge and wires it to the WebRTC side through the small
// interfaces declared here (RTPWriter, RTCOutlet, KeyframeRequester) and
// plain functions in Config; bridge imports neither control nor conf.
//
// Concurrency: every goroutine bridge starts is owned by the Bridge, an
// RTCPlayer or an RTCIngest and is stopped and waited for by its Close. A
// transcoder that fails or panics only loses its own stream's audio.
package bridge
