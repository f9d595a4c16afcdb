package rtmp

import (
	"testing"

	"github.com/fanout/fanout/bridge/hub"
)

// TestParseRequest: tcUrl + stream name as SRS's srs_discovery_tc_url
// splits them, for the URL shapes ffmpeg, OBS and FMLE send.
func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		tcURL, stream string
		want          request
	}{
		{"rtmp://127.0.0.1/live", "livestream", request{Host: "127.0.0.1", App: "live", Stream: "livestream"}},
		// ffmpeg's rtmp://host/live/stream?token=abc: the query rides on the stream name.
		{"rtmp://127.0.0.1:1935/live", "stream?token=abc", request{Host: "127.0.0.1", App: "live", Stream: "stream",
			Param: "?token=abc"}},
		// ffmpeg's rtmp://host/live?vhost=x/stream: the query is in the tcUrl (FMLE style).
		{"rtmp://127.0.0.1:1935/live?vhost=x", "stream", request{Host: "127.0.0.1", Vhost: "x", App: "live",
			Stream: "stream", Param: "?vhost=x"}},
		{"rtmp://h/live?vhost=x", "s?token=t", request{Host: "h", Vhost: "x", App: "live", Stream: "s",
			Param: "?token=t&vhost=x"}},
		{"rtmp://h/live?domain=d", "s", request{Host: "h", Vhost: "d", App: "live", Stream: "s", Param: "?domain=d"}},
		{"rtmp://h/live?domain=d&vhost=v", "s", request{Host: "h", Vhost: "v", App: "live", Stream: "s",
			Param: "?domain=d&vhost=v"}},
		{"rtmp://cdn.example/a/b", "c", request{Host: "cdn.example", App: "a/b", Stream: "c"}},
		{"rtmp://h/live/_definst_", "s", request{Host: "h", App: "live", Stream: "s"}},
		{"rtmp://h", "s", request{Host: "h", App: DefaultApp, Stream: "s"}},
	} {
		got, err := parseRequest(tc.tcURL, tc.stream)
		if err != nil || got != tc.want {
			t.Errorf("%s + %s: %+v %v, want %+v", tc.tcURL, tc.stream, got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"rtmp://h/live", ""}, {"rtmp://h/live", "/"}, {"rtmp://h/live/", ""}} {
		if r, err := parseRequest(bad[0], bad[1]); err == nil {
			t.Errorf("%s + %q: %+v, want ErrBadURL", bad[0], bad[1], r)
		}
	}
}

// TestKeyOf: the vhost is ?vhost= (or the host) mapped through
// Config.Vhost, unknown names falling back to the default vhost as in SRS.
func TestKeyOf(t *testing.T) {
	mapped := NewServer(Config{Vhost: func(host string) string {
		if host == "cdn.example" || host == "v1" {
			return host
		}
		return hub.DefaultVhost
	}})
	plain := NewServer(Config{})
	for _, tc := range []struct {
		s    *Server
		req  request
		want hub.Key
	}{
		{mapped, request{Host: "127.0.0.1", App: "live", Stream: "a"}, hub.NewKey("", "live", "a")},
		{mapped, request{Host: "cdn.example", App: "live", Stream: "a"}, hub.NewKey("cdn.example", "live", "a")},
		{mapped, request{Host: "127.0.0.1", Vhost: "v1", App: "live", Stream: "a"}, hub.NewKey("v1", "live", "a")},
		{mapped, request{Host: "cdn.example", Vhost: "nope", App: "live", Stream: "a"}, hub.NewKey("", "live", "a")},
		{plain, request{Host: "cdn.example", App: "live", Stream: "a"}, hub.NewKey("", "live", "a")},
		{plain, request{Host: "h", Vhost: "v2", App: "live", Stream: "a"}, hub.NewKey("v2", "live", "a")},
	} {
		if got := tc.s.keyOf(tc.req); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.req, got, tc.want)
		}
	}
}
