package node

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"github.com/fanout/fanout/control/candidate"
)

// PrintURLs prints where to publish and play, as SRS's docs list them, and
// the candidates answers will carry, computed as control computes them for
// a request without ?eip= (api_as_candidates adds the host a client's
// request names). A loopback or private candidate is only reachable from
// this machine or its network, so the banner says how to change it.
func (s *Server) PrintURLs(w io.Writer) {
	api := s.APIAddr()
	host := "localhost"
	fmt.Fprintf(w, "Fanout is running.\n")
	fmt.Fprintf(w, "  WHIP publish:  http://%s:%d/rtc/v1/whip/?app=live&stream=livestream\n", host, api.Port())
	fmt.Fprintf(w, "  WHEP play:     http://%s:%d/rtc/v1/whep/?app=live&stream=livestream\n", host, api.Port())
	if s.tcpSrv != nil {
		fmt.Fprintf(w, "  WebRTC media:  udp/%d, tcp/%d\n", s.fp.Port(), s.tcpPort())
	} else {
		fmt.Fprintf(w, "  WebRTC media:  udp/%d\n", s.fp.Port())
	}
	if s.apiTLS.IsValid() {
		fmt.Fprintf(w, "  WHIP (HTTPS):  https://%s:%d/rtc/v1/whip/?app=live&stream=livestream\n", host, s.apiTLS.Port())
	}
	if h := s.HTTPAddr(); h.IsValid() {
		fmt.Fprintf(w, "  Pages:         http://%s:%d/players/whip.html and /players/whep.html\n", host, h.Port())
	}
	if r := s.RTMPAddr(); r.IsValid() {
		fmt.Fprintf(w, "  RTMP publish:  rtmp://%s:%d/live/livestream\n", host, r.Port())
		if h := s.HTTPAddr(); h.IsValid() {
			fmt.Fprintf(w, "  HTTP-FLV, HLS: http://%s:%d/live/livestream.flv and .m3u8 (vhost http_remux, hls)\n", host, h.Port())
		}
	}
	s.printCandidates(w, candidate.Compute(s.candidateParams(), candidate.Request{}, candidate.Env{}))
}

// printCandidates lists the candidates and warns about each host that
// clients elsewhere cannot reach.
func (s *Server) printCandidates(w io.Writer, cands []candidate.Candidate) {
	if len(cands) == 0 {
		fmt.Fprintf(w, "  Candidate:     none configured; answers carry only the API host a client names (api_as_candidates) or ?eip=\n")
		return
	}
	warned := map[string]bool{}
	for _, c := range cands {
		fmt.Fprintf(w, "  Candidate:     %s %s\n", c.Proto, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	}
	for _, c := range cands {
		ip, err := netip.ParseAddr(c.Host)
		if err != nil || warned[c.Host] {
			continue
		}
		var kind string
		switch {
		case ip.IsLoopback():
			kind = "a loopback address: only clients on this machine can reach it"
		case ip.IsPrivate(), ip.IsLinkLocalUnicast():
			kind = "a private address: clients outside this network cannot reach it"
		default:
			continue
		}
		warned[c.Host] = true
		fmt.Fprintf(w, "  WARNING: candidate %s is %s; set `candidate` in rtc_server (or CANDIDATE=, SRS_RTC_SERVER_CANDIDATE=) to the public IP, or add ?eip=IP to the WHIP/WHEP URL\n",
			c.Host, kind)
	}
}
