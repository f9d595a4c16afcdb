package rtmp

import (
	"net/url"
	"testing"

	"github.com/fanout/fanout/bridge/hub"
)

func TestKeyOf(t *testing.T) {
	s := NewServer(Config{Vhost: func(host string) string {
		if host == "cdn.example" {
			return "cdn.example"
		}
		return hub.DefaultVhost
	}})
	for _, tc := range []struct {
		url  string
		want hub.Key
		ok   bool
	}{
		{"rtmp://127.0.0.1/live/livestream", hub.Key{Vhost: hub.DefaultVhost, App: "live", Stream: "livestream"}, true},
		{"rtmp://127.0.0.1/live/show?vhost=v1", hub.Key{Vhost: "v1", App: "live", Stream: "show"}, true},
		{"rtmp://cdn.example/a/b/c", hub.Key{Vhost: "cdn.example", App: "a/b", Stream: "c"}, true},
		{"rtmp://127.0.0.1/live", hub.Key{}, false},
		{"rtmp://127.0.0.1/live/", hub.Key{}, false},
	} {
		u, _ := url.Parse(tc.url)
		got, err := s.keyOf(u)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.url, got, err, tc.want)
		}
	}
}
