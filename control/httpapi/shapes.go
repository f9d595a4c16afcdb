package httpapi

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
)

// StreamInfo is one entry of /api/v1/streams, in SRS's shape
// (SrsStatisticStream::dumps). Fields SRS fills that Fanout does not
// measure stay zero: frames, audio_frames, video_frames, kbps, and the
// video's width and height.
type StreamInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Vhost       string `json:"-"`     // vhost name
	VhostID     string `json:"vhost"` // SRS lists the vhost's id here
	App         string `json:"app"`
	TcURL       string `json:"tcUrl"`
	URL         string `json:"url"`
	LiveMs      int64  `json:"live_ms"` // SRS: the time of the answer, in Unix ms
	Clients     int    `json:"clients"`
	Frames      uint64 `json:"frames"`
	AudioFrames uint64 `json:"audio_frames"`
	VideoFrames uint64 `json:"video_frames"`
	SendBytes   uint64 `json:"send_bytes"`
	RecvBytes   uint64 `json:"recv_bytes"`
	Kbps        Kbps   `json:"kbps"`
	Publish     struct {
		Active bool   `json:"active"`
		CID    string `json:"cid,omitempty"`
	} `json:"publish"`
	Video *VideoInfo `json:"video"` // null without video, as SRS
	Audio *AudioInfo `json:"audio"`
}

// Kbps is SRS's 30-second bitrate pair; Fanout does not sample bitrates
// per stream or client and leaves both 0 (the byte counters are exact).
type Kbps struct {
	Recv30s uint64 `json:"recv_30s"`
	Send30s uint64 `json:"send_30s"`
}

// VideoInfo is a stream's video in SRS's shape. Profile and Level are
// null for VP9 and AV1, as SRS; width and height are 0 (not parsed).
type VideoInfo struct {
	Codec   string  `json:"codec"`
	Profile *string `json:"profile"`
	Level   *string `json:"level"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
}

// AudioInfo is a stream's audio in SRS's shape.
type AudioInfo struct {
	Codec      string `json:"codec"`
	SampleRate uint32 `json:"sample_rate"`
	Channel    uint16 `json:"channel"`
	Profile    string `json:"profile"` // SRS's AAC object type; "Other" for RTC codecs
}

// ClientInfo is one entry of /api/v1/clients, in SRS's shape
// (SrsStatisticClient::dumps) plus Fanout's session fields. pageUrl and
// swfUrl are RTMP's and stay "".
type ClientInfo struct {
	ID        string  `json:"id"`
	Vhost     string  `json:"-"`     // vhost name
	VhostID   string  `json:"vhost"` // SRS lists the vhost's id here
	Stream    string  `json:"stream"`
	IP        string  `json:"ip"`
	PageURL   string  `json:"pageUrl"`
	SwfURL    string  `json:"swfUrl"`
	TcURL     string  `json:"tcUrl"`
	URL       string  `json:"url"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Publish   bool    `json:"publish"`
	Alive     float64 `json:"alive"`
	SendBytes uint64  `json:"send_bytes"`
	RecvBytes uint64  `json:"recv_bytes"`
	Kbps      Kbps    `json:"kbps"`
	Session   string  `json:"session"`
	Peer      string  `json:"peer,omitempty"`
	SRTP      string  `json:"srtp,omitempty"`
	// Quality is the fastpath's media counters of the session (packets,
	// loss, jitter, NACKs, PLIs, RTT), refreshed every second.
	Quality any `json:"quality,omitempty"`
	// Layer is a simulcast player's layer (layer.go).
	Layer *LayerInfo `json:"layer,omitempty"`
}

// VhostID is the id a vhost is listed under: SRS's "vid-" and 7
// characters, here derived from the name so it is stable across restarts.
func VhostID(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return "vid-" + hex.EncodeToString(h.Sum(nil))[:7]
}

// Video describes a video codec as SRS does; fmtp gives H.264's profile
// and level (profile-level-id, RFC 6184 §8.1).
func Video(codec, fmtp string) *VideoInfo {
	v := &VideoInfo{Codec: codec}
	switch codec {
	case "VP9", "AV1":
		return v
	case "H264":
		profile, level := h264ProfileLevel(fmtp)
		v.Profile, v.Level = &profile, &level
	default:
		other := "Other"
		v.Profile, v.Level = &other, &other
	}
	return v
}

// Audio describes an audio codec as SRS does.
func Audio(codec string, rate uint32, channels uint16) *AudioInfo {
	if codec == "opus" {
		codec = "Opus"
	}
	return &AudioInfo{Codec: codec, SampleRate: rate, Channel: max(channels, 1), Profile: "Other"}
}

// h264ProfileLevel names profile-level-id's profile_idc and level_idc as
// SRS's srs_avc_profile2str and srs_avc_level2str do.
func h264ProfileLevel(fmtp string) (profile, level string) {
	plid := ""
	for _, kv := range strings.Split(fmtp, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && strings.EqualFold(k, "profile-level-id") {
			plid = v
		}
	}
	b, err := hex.DecodeString(plid)
	if err != nil || len(b) != 3 {
		return "Other", "Other"
	}
	names := map[byte]string{66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High(10)",
		122: "High(422)", 244: "High(444)"}
	profile = names[b[0]]
	switch {
	case profile == "":
		profile = "Other"
	case b[0] == 66 && b[1]&0x40 != 0:
		profile = "Baseline(Constrained)"
	}
	level = fmt.Sprint(b[2] / 10)
	if b[2]%10 != 0 {
		level += fmt.Sprintf(".%d", b[2]%10)
	}
	return profile, level
}
