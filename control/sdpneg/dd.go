package sdpneg

import (
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// DDURI is the AV1 RTP dependency descriptor header extension
// (https://aomediacodec.github.io/av1-rtp-spec/ appendix A): each packet's
// frame boundaries and template, and on key frames the template structure
// that gives each template its temporal layer. It is negotiated on AV1
// video m-lines only, where the fastpath drops temporal layers per player
// by it (fastpath/av1dd) and forwards it to the players that negotiated it.
const DDURI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"

// AllowMixedAttr (RFC 8285 §6) lets a sender mix one-byte and two-byte
// extension headers: a key frame's dependency descriptor, with its template
// structure, exceeds the one-byte form's 16 bytes, and Chromium only sends
// it when the answer carries this attribute.
const AllowMixedAttr = "extmap-allow-mixed"

// ddExt returns the dependency descriptor's extmap id of an AV1 video
// m-line offer, 0 when absent or the codec is another: ids 1–14, or up
// to 255 (two-byte form) when the offer allows mixed headers.
func ddExt(md *sdp.MediaDescription, codec string, mixed bool) uint8 {
	if codec != CodecAV1 {
		return 0
	}
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 2 || f[1] != DDURI {
			continue
		}
		idStr, _, _ := strings.Cut(f[0], "/")
		id, err := strconv.ParseUint(idStr, 10, 8)
		if err == nil && id >= 1 && id != 15 && (id <= 14 || mixed) {
			return uint8(id)
		}
	}
	return 0
}

// allowMixed reports an a=extmap-allow-mixed at session or media level.
func allowMixed(sd *sdp.SessionDescription, md *sdp.MediaDescription) bool {
	for _, a := range sd.Attributes {
		if a.Key == AllowMixedAttr {
			return true
		}
	}
	for _, a := range md.Attributes {
		if a.Key == AllowMixedAttr {
			return true
		}
	}
	return false
}
