package httpapi

import (
	"cmp"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
)

// LayerRel is the Link relation of the WHEP layer-selection extension
// (draft-ietf-wish-whep §4.6.1): a POST of JSON to its URL picks the
// simulcast encoding a player receives.
const LayerRel = "urn:ietf:params:whep:ext:core:layer"

// LayerInfo is a simulcast player's layer, under "layer" in /api/v1/clients.
type LayerInfo struct {
	Layers   []string `json:"layers"`           // the publisher's RIDs, highest first
	Wanted   string   `json:"wanted,omitempty"` // as asked: "h", "m", "l" or a RID; "" = default (highest)
	Target   string   `json:"target"`           // the RID that request resolves to now
	Current  string   `json:"current"`          // the RID the player receives now ("" before its first keyframe)
	Switches uint64   `json:"switches"`
	// Auto: no layer pinned, the player's network picks (at most Cap, the
	// highest its estimate or its loss allows now; Downs and Ups are the
	// steps taken).
	Auto  bool   `json:"auto"`
	Cap   string `json:"cap,omitempty"`
	Downs uint64 `json:"downs"`
	Ups   uint64 `json:"ups"`
	// EstimateBps is the player's bandwidth estimate from its transport-wide
	// feedback (what picks Cap when it negotiated transport-cc); 0 = none,
	// its Receiver Reports' loss picks.
	EstimateBps uint64 `json:"estimate_bps"`
}

// layerRequest is the extension's JSON body; encodingId names the RID (or
// h, m, l; "auto" hands the choice back to the player's loss). Spatial
// layer ids (SVC) are not supported.
type layerRequest struct {
	MediaID    string `json:"mediaId"`
	EncodingID string `json:"encodingId"`
	// TemporalLayerID (or MaxTemporalLayerID) caps a VP9 or AV1 SVC player's
	// temporal layers: it gets TIDs up to this one.
	TemporalLayerID    *int `json:"temporalLayerId"`
	MaxTemporalLayerID *int `json:"maxTemporalLayerId"`
}

// handleLayer serves the layer URL a WHEP answer's Link header names.
func (a *API) handleLayer(w http.ResponseWriter, r *http.Request) {
	a.cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Accept-Post", "application/json")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		a.writeError(w, r, Errorf(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		a.writeError(w, r, Errorf(http.StatusUnsupportedMediaType, "layer selection needs application/json"))
		return
	}
	var req layerRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		a.writeError(w, r, Errorf(http.StatusBadRequest, "layer selection body: %v", err))
		return
	}
	q := r.URL.Query()
	tid := cmp.Or(req.TemporalLayerID, req.MaxTemporalLayerID)
	if req.EncodingID == "" && tid == nil {
		a.writeError(w, r, Errorf(http.StatusBadRequest, "layer selection names no encodingId or temporalLayerId"))
		return
	}
	if req.EncodingID != "" {
		if err := a.reg.SetLayer(q.Get("session"), q.Get("token"), req.EncodingID); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if tid != nil {
		if err := a.reg.SetTemporal(q.Get("session"), q.Get("token"), *tid); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// validLayer accepts "" or a RID-shaped token (RFC 8851 §10: alphanumerics,
// '-' and '_'; 16 bytes fit the one-byte header extension).
func validLayer(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// temporalParam reads ?temporal=N (a TID 0…7) as N+1: 0 when absent,
// -1 (refused) when not a number.
func temporalParam(v string) int {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n + 1
}
