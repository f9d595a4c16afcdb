package control

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/fanout/fanout/control/candidate"
	"github.com/fanout/fanout/control/httpapi"
	"github.com/fanout/fanout/control/sdpneg"
)

// offer is an httpapi.Offer on its way through the registry.
type offer struct {
	httpapi.Offer
	parsed *sdpneg.Offer
	cid    string // client id for the API and hooks
}

// negotiate runs an offer through the vhost's options, hooks, negotiation,
// registration and answer building.
func (s *Server) negotiate(ctx context.Context, ho httpapi.Offer) (*httpapi.Answer, error) {
	o := offer{Offer: ho, cid: randomString(8)}
	opts := s.cfg.Vhost(o.Vhost)
	if !opts.Enabled {
		return nil, ErrRTCDisabled
	}
	var err error
	if o.parsed, err = sdpneg.ParseOffer(o.SDP); err != nil {
		return nil, err
	}
	if err := s.startHooks(ctx, o, opts.Hooks); err != nil {
		return nil, err
	}
	if o.Play {
		if err := s.pull(ctx, o.Vhost, o.App, o.Stream); err != nil {
			return nil, err
		}
	}
	// transport-cc both ways: Fanout sends publishers feedback, and stamps
	// a player's packets and reads its feedback for the player's bandwidth
	// estimate (fastpath/bwe), which picks its simulcast layer.
	nopt := sdpneg.Options{VideoCodec: o.VideoCodec, AudioCodec: o.AudioCodec, NACK: opts.NACK,
		TWCC: opts.TWCC}
	cands := candidate.Compute(s.cfg.Candidates, candidate.Request{EIP: o.EIP, APIHost: o.APIHost}, s.candEnv)
	ss, neg, err := s.register(o, nopt)
	if err != nil {
		return nil, err
	}
	answer, err := sdpneg.BuildAnswer(neg, sdpneg.AnswerParams{
		Ufrag: ss.localUfrag, Pwd: ss.localPwd, Fingerprint: s.fingerprint,
		Setup: ss.setup, Candidates: toSDP(cands), Play: o.Play,
		SessionName: sessionTitle(o.Play), StreamID: o.App + "/" + o.Stream,
		SSRCs: ssrcsOf(ss), CNAME: randomString(16),
	})
	if err != nil {
		s.end(ss, "answer: "+err.Error())
		return nil, err
	}
	loc := "/rtc/v1/whip/?" + url.Values{
		"action": {"delete"}, "token": {ss.token}, "app": {o.App}, "stream": {o.Stream},
		"session": {ss.sessionName()},
	}.Encode()
	ss.log.Info("session created", "candidates", len(cands), "setup", ss.setup)
	ans := &httpapi.Answer{SDP: answer, Location: loc, ETag: ss.etag, Session: ss.sessionName()}
	if o.Play {
		ans.LayerURL = layerURL(ss)
	}
	return ans, nil
}

// withStatus gives a registry error the HTTP status it answers with.
func withStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*httpapi.Error](err); ok {
		return err
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, sdpneg.ErrMalformed):
		status = http.StatusBadRequest
	case errors.Is(err, sdpneg.ErrUnsupported):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ErrStreamBusy):
		status = http.StatusConflict
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrRTCDisabled), errors.Is(err, errHookRefused):
		status = http.StatusForbidden
	case errors.Is(err, ErrDraining), errors.Is(err, ErrPull):
		status = http.StatusServiceUnavailable
	}
	return &httpapi.Error{Status: status, Err: err}
}

func toSDP(cs []candidate.Candidate) []sdpneg.Candidate {
	out := make([]sdpneg.Candidate, len(cs))
	for i, c := range cs {
		out[i] = sdpneg.Candidate{Host: c.Host, Port: c.Port, Proto: c.Proto}
	}
	return out
}

func sessionTitle(play bool) string {
	if play {
		return "FanoutPlaySession"
	}
	return "FanoutPublishSession"
}

func ssrcsOf(ss *session) map[sdpneg.Kind]uint32 {
	m := map[sdpneg.Kind]uint32{}
	for k, t := range ss.tracks {
		if t.SSRC != 0 {
			m[sdpneg.Kind(k)] = t.SSRC
		}
	}
	return m
}

// startHooks runs on_publish or on_play before the answer.
func (s *Server) startHooks(ctx context.Context, o offer, h Hooks) error {
	urls, action := h.OnPublish, "on_publish"
	if o.Play {
		urls, action = h.OnPlay, "on_play"
	}
	if !h.Enabled || len(urls) == 0 {
		return nil
	}
	return s.callHooks(ctx, urls, hookEvent{
		ServerID: s.cfg.ServerID, Action: action, ClientID: o.cid, IP: o.ClientIP,
		Vhost: o.Vhost, App: o.App, Stream: o.Stream, Param: o.Param,
		TcURL: "webrtc://" + o.Vhost + "/" + o.App, StreamURL: "/" + o.App + "/" + o.Stream,
	})
}
