package control

import (
	"crypto/subtle"
	"net/http"
	"net/url"

	"github.com/fanout/fanout/control/httpapi"
	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// Simulcast in control: a publisher's negotiated layers (sdpneg.Simulcast,
// highest first) go to the fastpath as route.Simulcast; a player's wanted
// layer is kept as asked (?layer= or the WHEP layer extension) and resolved
// against the stream's publisher each time a table is built, so it holds
// across a republish with other RIDs.

// simulcastOf is the route form of a negotiated simulcast track.
func simulcastOf(sim *sdpneg.Simulcast) route.Simulcast {
	var rs route.Simulcast
	if sim == nil {
		return rs
	}
	for _, r := range sim.RIDs {
		if int(rs.N) == route.MaxLayers {
			break
		}
		rs.RIDs[rs.N] = r
		rs.N++
	}
	rs.RIDExt, rs.RRIDExt = sim.RIDExt, sim.RRIDExt
	return rs
}

// resolveLayer turns a wanted layer into a layer index of sim: "h", "m"
// and "l" name the highest, middle and lowest; anything else is a RID;
// "" and an unknown RID are the highest (the default until a bandwidth
// estimator picks one).
func resolveLayer(want string, sim *route.Simulcast) uint8 {
	if sim == nil || sim.N == 0 {
		return 0
	}
	if l, ok := sim.LayerOf([]byte(want)); ok && want != "h" && want != "m" && want != "l" {
		return l
	}
	switch want {
	case "m":
		return sim.N / 2
	case "l":
		return sim.N - 1
	}
	return 0
}

// validLayer reports whether want is acceptable as a wanted layer: "" or a
// RID-shaped token (RFC 8851 §10).
func validLayer(want string) bool {
	if len(want) > 16 {
		return false
	}
	for _, c := range []byte(want) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SetLayer is the WHEP layer extension: player name (with its token)
// follows layer from now on ("auto": its loss picks again). A RID the
// publisher does not send is 400.
func (s *Server) SetLayer(name, token, layer string) error {
	ss := s.byName(name)
	if ss == nil || subtle.ConstantTimeCompare([]byte(token), []byte(ss.token)) != 1 {
		return httpapi.Errorf(http.StatusNotFound, "session %q not found", name)
	}
	if ss.role != route.RolePlayer {
		return httpapi.Errorf(http.StatusBadRequest, "session %q is not a player", name)
	}
	if !validLayer(layer) || layer == "" {
		return httpapi.Errorf(http.StatusBadRequest, "encodingId %q is not a RID or h, m, l", layer)
	}
	s.mu.Lock()
	defer s.unlock()
	if ss.ended {
		return httpapi.Errorf(http.StatusNotFound, "session %q not found", name)
	}
	pub := ss.stream.publisher
	if pub == nil || pub.sim.N == 0 {
		return httpapi.Errorf(http.StatusConflict, "stream %s has no simulcast publisher", ss.stream.key)
	}
	if _, ok := pub.sim.LayerOf([]byte(layer)); !ok && layer != "h" && layer != "m" && layer != "l" && layer != "auto" {
		return httpapi.Errorf(http.StatusBadRequest, "encodingId %q is not one of the publisher's RIDs %v", layer,
			pub.sim.RIDs[:pub.sim.N])
	}
	ss.layer = layer
	if layer == "auto" {
		ss.layer = ""
	}
	s.changedLocked(ss)
	ss.log.Info("layer selected", "layer", layer)
	return nil
}

// layerInfoLocked describes a player's layer for the API: what it asked
// for and, from the fastpath's counters, the layer it follows now.
func (ss *session) layerInfoLocked() *httpapi.LayerInfo {
	pub := ss.stream.publisher
	if ss.role != route.RolePlayer || pub == nil || pub.sim.N == 0 {
		return nil
	}
	li := &httpapi.LayerInfo{Wanted: ss.layer, Auto: ss.layer == "", Layers: append([]string(nil), pub.sim.RIDs[:pub.sim.N]...)}
	li.Target = pub.sim.RIDs[resolveLayer(ss.layer, &pub.sim)]
	return li
}

// fillLayer completes li with the layer the fastpath reports in q.
func fillLayer(li *httpapi.LayerInfo, q route.SessionQuality) {
	if li == nil || !q.Simulcast {
		return
	}
	li.Switches, li.Downs, li.Ups, li.EstimateBps = q.LayerSwitches, q.LayerDowns, q.LayerUps, q.Estimate
	if int(q.Layer) < len(li.Layers) {
		li.Current = li.Layers[q.Layer]
	}
	if li.Auto && int(q.LayerCap) < len(li.Layers) {
		li.Cap = li.Layers[q.LayerCap]
	}
}

func layerURL(ss *session) string {
	return "/rtc/v1/whep/layer/?" + url.Values{"session": {ss.sessionName()}, "token": {ss.token}}.Encode()
}

// SetTemporal caps player name's VP9 or AV1 temporal layers at tid (-1: all).
func (s *Server) SetTemporal(name, token string, tid int) error {
	ss := s.byName(name)
	if ss == nil || subtle.ConstantTimeCompare([]byte(token), []byte(ss.token)) != 1 {
		return httpapi.Errorf(http.StatusNotFound, "session %q not found", name)
	}
	if ss.role != route.RolePlayer {
		return httpapi.Errorf(http.StatusBadRequest, "session %q is not a player", name)
	}
	if tid < -1 || tid > 7 {
		return httpapi.Errorf(http.StatusBadRequest, "temporalLayerId %d is not 0…7", tid)
	}
	s.mu.Lock()
	defer s.unlock()
	if ss.ended {
		return httpapi.Errorf(http.StatusNotFound, "session %q not found", name)
	}
	ss.temporal = uint8(tid + 1)
	s.changedLocked(ss)
	ss.log.Info("temporal layer cap", "tid", tid)
	return nil
}
