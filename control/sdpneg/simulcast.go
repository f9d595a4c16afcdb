package sdpneg

import (
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Simulcast header extensions (RFC 8852 §3, RFC 9143 §15: the mid one that
// lets a BUNDLEd receiver demultiplex SSRCs it was not told about).
const (
	MidURI  = "urn:ietf:params:rtp-hdrext:sdes:mid"
	RIDURI  = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
	RRIDURI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
)

// MaxSimulcast bounds the simulcast encodings accepted per video m-line;
// more are answered without the extra RIDs, which the sender then stops.
const MaxSimulcast = 3

// Simulcast is what a publisher's video m-line negotiated of RFC 8853
// simulcast: the RIDs it sends, ordered highest layer first, and the ids
// of the header extensions that name them.
type Simulcast struct {
	RIDs                    []string // highest first; what the answer's a=simulcast:recv lists
	offered                 []string // offer order, for the answer
	MidExt, RIDExt, RRIDExt uint8
}

// parseSimulcast reads a=simulcast:send and a=rid (RFC 8853 §5.1, RFC 8851
// §4). It returns nil when the m-line does not offer send simulcast, names
// fewer than two usable RIDs, or lacks the rtp-stream-id extension.
func parseSimulcast(md *sdp.MediaDescription) *Simulcast {
	val, ok := md.Attribute("simulcast")
	if !ok {
		return nil
	}
	declared := map[string]bool{}
	for _, a := range md.Attributes {
		if a.Key != "rid" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) >= 2 && f[1] == "send" {
			declared[f[0]] = true
		}
	}
	var rids []string
	f := strings.Fields(val)
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] != "send" {
			continue
		}
		for _, stream := range strings.Split(f[i+1], ";") {
			// A stream lists alternatives (','); the first is taken. A '~'
			// marks a paused one, still received when it resumes.
			alt, _, _ := strings.Cut(stream, ",")
			alt = strings.TrimPrefix(alt, "~")
			if declared[alt] && isRID(alt) && len(rids) < MaxSimulcast && !contains(rids, alt) {
				rids = append(rids, alt)
			}
		}
	}
	s := &Simulcast{offered: rids, MidExt: extID(md, MidURI), RIDExt: extID(md, RIDURI), RRIDExt: extID(md, RRIDURI)}
	if len(rids) < 2 || s.RIDExt == 0 || s.MidExt == 0 {
		return nil
	}
	s.RIDs = rankRIDs(rids)
	return s
}

// rankRIDs orders RIDs from the highest layer to the lowest: by the names
// browsers and libraries use (f/h/q, h/m/l, hi/mid/lo…), else the offer's
// order, which RFC 8853 §5.2 makes the sender's preference, first highest.
func rankRIDs(rids []string) []string {
	out := append([]string(nil), rids...)
	ranks := make(map[string]int, len(out))
	named := true
	for i, r := range out {
		k, ok := ridRank(r)
		named = named && ok
		ranks[r] = k*10 + i
	}
	if !named {
		return out
	}
	for i := 1; i < len(out); i++ { // insertion sort: at most 3 elements
		for j := i; j > 0 && ranks[out[j]] < ranks[out[j-1]]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func ridRank(rid string) (int, bool) {
	switch strings.ToLower(rid) {
	case "f", "full", "hi", "high":
		return 0, true
	case "h":
		return 1, true // "h" is high beside m/l, half beside f/q: both sit above m, l and q
	case "m", "mid", "half", "medium":
		return 2, true
	case "q", "l", "lo", "low", "quarter":
		return 3, true
	}
	return 0, false
}

// isRID reports a valid rid-id (RFC 8851 §10: 1*(alpha-numeric / "-" / "_"))
// that fits the one-byte header extension (16 bytes).
func isRID(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// extID returns the offer's extmap id for uri (RFC 8285 §8), 0 if absent
// or not usable with the one-byte header.
func extID(md *sdp.MediaDescription, uri string) uint8 {
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		f := strings.Fields(a.Value)
		if len(f) < 2 || f[1] != uri {
			continue
		}
		idStr, _, _ := strings.Cut(f[0], "/")
		id, err := strconv.ParseUint(idStr, 10, 8)
		if err == nil && id >= 1 && id <= 14 {
			return uint8(id)
		}
	}
	return 0
}

// writeSimulcast writes the answer's extmaps, a=rid recv and
// a=simulcast:recv lines (RFC 8853 §5.3: the answer reverses the
// direction and keeps the offer's order).
func writeSimulcast(w func(...string), s *Simulcast) {
	w("a=extmap:", strconv.Itoa(int(s.MidExt)), " ", MidURI)
	w("a=extmap:", strconv.Itoa(int(s.RIDExt)), " ", RIDURI)
	if s.RRIDExt != 0 {
		w("a=extmap:", strconv.Itoa(int(s.RRIDExt)), " ", RRIDURI)
	}
}

func writeRIDs(w func(...string), s *Simulcast) {
	for _, r := range s.offered {
		w("a=rid:", r, " recv")
	}
	w("a=simulcast:recv ", strings.Join(s.offered, ";"))
}
