package conf

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestClusterBlock(t *testing.T) {
	tests := []struct {
		name, src string
		env       []string
		want      Cluster
	}{
		{"default off", "", nil, Cluster{Redis: "redis://127.0.0.1:6379/0"}},
		{"file", `cluster { enabled on; redis rediss://u:p@r.example:6380/2; node_id edge-1.a;
			advertise 10.0.0.5:1985; redirect on; max_players 500; ttl 3; }`, nil,
			Cluster{Enabled: true, Redis: "rediss://u:p@r.example:6380/2", NodeID: "edge-1.a",
				Advertise: "http://10.0.0.5:1985", Redirect: true, MaxPlayers: 500, TTL: 3 * time.Second}},
		{"env wins", "cluster { enabled off; node_id a; }",
			[]string{"SRS_CLUSTER_ENABLED=on", "SRS_CLUSTER_NODE_ID=b", "SRS_CLUSTER_REDIS=redis://h:1/0",
				"SRS_CLUSTER_ADVERTISE=https://n.example:443/", "SRS_CLUSTER_REDIRECT=on", "SRS_CLUSTER_MAX_PLAYERS=7"},
			Cluster{Enabled: true, Redis: "redis://h:1/0", NodeID: "b", Advertise: "https://n.example:443", Redirect: true, MaxPlayers: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, tc.src, tc.env...).Cluster; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClusterBadValues(t *testing.T) {
	for _, src := range []string{
		"cluster { redis http://h:1; }",
		"cluster { redis redis://; }",
		"cluster { node_id 'a b'; }",
		"cluster { advertise ftp://h:1; }",
		"cluster { ttl 0.5; }",
		"cluster { ttl 301; }",
		"cluster { advertise http://h:1/rtc; }",
		"cluster { max_players -1; }",
	} {
		if _, _, err := parse(t, src); !errors.Is(err, ErrValue) {
			t.Errorf("%s: err %v, want ErrValue", src, err)
		}
	}
}

func TestShippedClusterConf(t *testing.T) {
	c, err := Load("cluster.conf", Options{Env: []string{"REDIS_URL=rediss://:pw@r:6380/1", "NODE_ID=a",
		"ADVERTISE=10.0.0.1:1985"}, Warn: func(m string) { t.Error(m) }})
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{Enabled: true, Redis: "rediss://:pw@r:6380/1", NodeID: "a", Advertise: "http://10.0.0.1:1985", Redirect: true, TTL: 10 * time.Second}
	if !reflect.DeepEqual(c.Cluster, want) {
		t.Errorf("got %+v, want %+v", c.Cluster, want)
	}
}
