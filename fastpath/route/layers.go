package route

// Simulcast (RFC 8853): a publisher's video track may arrive as up to
// MaxLayers encodings, each its own RTP stream named by a RID (RFC 8852)
// in the sdes:rtp-stream-id header extension of its first packets. Control
// negotiates the RIDs and extension ids and orders the layers from the
// highest (index 0) to the lowest; the publisher's core learns each
// layer's SSRC from the first packet that names it. A player follows one
// layer at a time, the one its Session.Layer names.

// MaxLayers bounds the simulcast encodings of one video track.
const MaxLayers = 3

// Simulcast describes a publisher's simulcast video; N == 0 means none.
type Simulcast struct {
	N uint8 // number of layers, at most MaxLayers
	// RIDExt and RRIDExt are the negotiated extension ids (RFC 8285) of
	// urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id and
	// …:repaired-rtp-stream-id; 0 = not negotiated.
	RIDExt, RRIDExt uint8
	// RIDs are the layers' RIDs, highest first.
	RIDs [MaxLayers]string
}

// LayerOf returns the index of the layer named rid.
func (s *Simulcast) LayerOf(rid []byte) (uint8, bool) {
	for i := uint8(0); i < s.N; i++ {
		if string(rid) == s.RIDs[i] {
			return i, true
		}
	}
	return 0, false
}
