package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fanout/fanout/fastpath/route"
)

// Hooks are a vhost's http_hooks: SRS's HTTP callbacks. on_publish and
// on_play run before the answer and refuse the session unless every URL
// answers 200 with `0` or `{"code":0}`; on_unpublish and on_stop are
// fire-and-forget when a session ends.
type Hooks struct {
	Enabled                                bool
	OnPublish, OnUnpublish, OnPlay, OnStop []string
}

// hookTimeout bounds one callback; a slow hook server delays only the
// session that triggered it.
const hookTimeout = 5 * time.Second

// hookEvent is SRS's callback body.
type hookEvent struct {
	ServerID  string `json:"server_id"`
	Action    string `json:"action"`
	ClientID  string `json:"client_id"`
	IP        string `json:"ip"`
	Vhost     string `json:"vhost"`
	App       string `json:"app"`
	TcURL     string `json:"tcUrl"`
	Stream    string `json:"stream"`
	Param     string `json:"param"`
	StreamURL string `json:"stream_url"`
	StreamID  string `json:"stream_id"`
}

// callHooks posts ev to every URL in turn; the first refusal wins.
func (s *Server) callHooks(ctx context.Context, urls []string, ev hookEvent) error {
	for _, u := range urls {
		if err := s.callHook(ctx, u, ev); err != nil {
			return fmt.Errorf("%s %w: %v", ev.Action, errHookRefused, err)
		}
	}
	return nil
}

func (s *Server) callHook(ctx context.Context, url string, ev hookEvent) error {
	ctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hookClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	reply := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, firstLine(reply))
	}
	if reply == "0" {
		return nil
	}
	var r struct {
		Code *int   `json:"code"`
		Msg  string `json:"msg"`
	}
	if json.Unmarshal(b, &r) != nil || r.Code == nil {
		return fmt.Errorf("answer %q is neither 0 nor {\"code\":0}", firstLine(reply))
	}
	if *r.Code != 0 {
		return fmt.Errorf("code %d %s", *r.Code, r.Msg)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// endHooks fires on_unpublish or on_stop for a session that ended.
func (s *Server) endHooks(ss *session) {
	h := s.cfg.Vhost(ss.stream.vhost).Hooks
	urls, action := h.OnStop, "on_stop"
	if ss.role == route.RolePublisher {
		urls, action = h.OnUnpublish, "on_unpublish"
	}
	if !h.Enabled || len(urls) == 0 || ss.virtual {
		return
	}
	ev := ss.hookEvent(s, action)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, u := range urls {
			if err := s.callHook(context.Background(), u, ev); err != nil {
				ss.log.Warn("hook failed", "action", action, "url", u, "err", err)
			}
		}
	}()
}

func (ss *session) hookEvent(s *Server, action string) hookEvent {
	st := ss.stream
	return hookEvent{
		ServerID: s.cfg.ServerID, Action: action, ClientID: ss.cid, IP: ss.clientIP,
		Vhost: st.vhost, App: st.app, Stream: st.name, Param: ss.param,
		TcURL:     "webrtc://" + st.vhost + "/" + st.app,
		StreamURL: "/" + st.app + "/" + st.name, StreamID: st.sid,
	}
}
