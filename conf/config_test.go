package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// ap is a listen address as ParseListen returns it.
func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// parse is Parse with a fixed, empty environment and collected warnings.
func parse(t *testing.T, src string, env ...string) (*Config, []string, error) {
	t.Helper()
	var warns []string
	c, err := Parse("test.conf", []byte(src), Options{
		Env:  append([]string{}, env...),
		Warn: func(m string) { warns = append(warns, m) },
	})
	return c, warns, err
}

func mustParse(t *testing.T, src string, env ...string) *Config {
	t.Helper()
	c, warns, err := parse(t, src, env...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(warns) > 0 {
		t.Fatalf("unexpected warnings: %q", warns)
	}
	return c
}

func TestDefaultsEmptyFile(t *testing.T) {
	c := mustParse(t, "")
	want := newConfig()
	want.File = "test.conf"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("empty file:\n got %+v\nwant %+v", c, want)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"listen", c.Listen, []netip.AddrPort{ap("[::]:1935")}},
		{"daemon", c.Daemon, true},
		{"log tank", c.LogTank, "console"},
		{"log level", c.LogLevel, "trace"},
		{"rtc off by default", c.RTCServer.Enabled, false},
		{"rtc listen", c.RTCServer.Listen, []netip.AddrPort{ap("[::]:8000")}},
		{"tcp", c.RTCServer.TCP, RTCTCP{Enabled: false, Listen: ap("[::]:8000")}},
		{"protocol", c.RTCServer.Protocol, "udp"},
		{"candidates", c.RTCServer.Candidates, []string{"*"}},
		{"auto detect", c.RTCServer.UseAutoDetectNetworkIP, true},
		{"ip family", c.RTCServer.IPFamily, "ipv4"},
		{"api as candidates", c.RTCServer.APIAsCandidates, true},
		{"resolve api domain", c.RTCServer.ResolveAPIDomain, true},
		{"keep api domain", c.RTCServer.KeepAPIDomain, false},
		{"ecdsa", c.RTCServer.ECDSA, true},
		{"encrypt", c.RTCServer.Encrypt, true},
		{"reuseport", c.RTCServer.Reuseport, 1},
		{"api", c.HTTPAPI.Enabled, false},
		{"api listen", c.HTTPAPI.Listen, ap("[::]:1985")},
		{"api crossdomain", c.HTTPAPI.Crossdomain, true},
		{"api https", c.HTTPAPI.HTTPS.Listen, ap("[::]:1990")},
		{"server listen", c.HTTPServer.Listen, ap("[::]:8080")},
		{"server dir", c.HTTPServer.Dir, "./objs/nginx/html"},
		{"server https", c.HTTPServer.HTTPS.Listen, ap("[::]:8088")},
		{"fastpath", c.Fastpath, Fastpath{Cores: 0, Batch: 64, GSO: true, BPF: "auto", FrameWait: 50 * time.Microsecond, XDPSTUNRate: 20, XDPSTUNBurst: 40,
			ReplayMaxAge: 2 * time.Second, ReplayMaxBytes: 1 << 20, XDPMode: "shield"}},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestVhostDefaults(t *testing.T) {
	c := mustParse(t, "vhost a.com { }")
	want := VhostRTC{
		NACK: true, NACKNoCopy: true, TWCC: true, STUNTimeout: 30 * time.Second,
		DTLSRole: "auto", DTLSVersion: "auto", KeepAVCNaluSEI: true,
		PLIForRTMP: 6 * time.Second, OpusBitrate: 48000, AACBitrate: 48000, KeyframeCache: true,
	}
	for _, name := range []string{"a.com", DefaultVhost} {
		if got := c.Vhosts[name].RTC; got != want {
			t.Errorf("%s rtc:\n got %+v\nwant %+v", name, got, want)
		}
	}
	v := c.Vhosts["a.com"]
	if v.HTTPRemux != (HTTPRemux{Mount: "[vhost]/[app]/[stream].flv"}) {
		t.Errorf("http_remux %+v", v.HTTPRemux)
	}
	if v.HLS != (HLS{Fragment: 10 * time.Second, Window: 60 * time.Second, Path: "./objs/nginx/html"}) {
		t.Errorf("hls %+v", v.HLS)
	}
}

func TestVhostLookup(t *testing.T) {
	c := mustParse(t, `vhost a.com { rtc { enabled on; } } vhost __defaultVhost__ { rtc { nack off; } }`)
	if v := c.Vhost("a.com"); v.Name != "a.com" || !v.RTC.Enabled {
		t.Errorf("a.com: %+v", v)
	}
	if v := c.Vhost("other"); v.Name != DefaultVhost || v.RTC.NACK {
		t.Errorf("fallback: %+v", v)
	}
	if v := (&Config{}).Vhost("x"); v == nil || v.Name != DefaultVhost {
		t.Errorf("zero Config: %+v", v)
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name string
		src  string
		get  func(*Config) any
		want any
	}{
		{"listen many", "listen 1935 [::]:1936 0.0.0.0:1937;", func(c *Config) any { return c.Listen }, []netip.AddrPort{ap("[::]:1935"), ap("[::]:1936"), ap("0.0.0.0:1937")}},
		{"listen forms", "listen :1 127.0.0.1:2 [::1]:3 localhost:4 [::ffff:10.0.0.1]:5 [2001:db8::7]:6;", func(c *Config) any { return c.Listen },
			[]netip.AddrPort{ap("[::]:1"), ap("127.0.0.1:2"), ap("[::1]:3"), ap("127.0.0.1:4"), ap("10.0.0.1:5"), ap("[2001:db8::7]:6")}},
		{"rtc listen v6", "rtc_server { listen 8000 [::]:8000; }", func(c *Config) any { return c.RTCServer.Listen }, []netip.AddrPort{ap("[::]:8000"), ap("[::]:8000")}},
		{"candidates", "rtc_server { candidate 192.168.1.100 [2001:db8::1]; }", func(c *Config) any { return c.RTCServer.Candidates }, []string{"192.168.1.100", "[2001:db8::1]"}},
		{"candidate 0.0.0.0", "rtc_server { candidate 0.0.0.0; }", func(c *Config) any { return c.RTCServer.Candidates }, []string{"*"}},
		{"tcp", "rtc_server { tcp { enabled on; listen 443; } protocol all; }", func(c *Config) any { return c.RTCServer.TCP.Listen.String() + c.RTCServer.Protocol }, "[::]:443all"},
		{"tcp v4 only", "rtc_server { tcp { listen 0.0.0.0:8000; } }", func(c *Config) any { return c.RTCServer.TCP.Listen }, ap("0.0.0.0:8000")},
		{"stun timeout", "vhost v { rtc { stun_timeout 5; } }", func(c *Config) any { return c.Vhosts["v"].RTC.STUNTimeout }, 5 * time.Second},
		{"pli", "vhost v { rtc { pli_for_rtmp 0.5; } }", func(c *Config) any { return c.Vhosts["v"].RTC.PLIForRTMP }, 500 * time.Millisecond},
		{"bitrate", "vhost v { rtc { opus_bitrate 64000; aac_bitrate 8000; } }", func(c *Config) any { return c.Vhosts["v"].RTC.OpusBitrate + c.Vhosts["v"].RTC.AACBitrate }, 72000},
		{"legacy aac", "vhost v { rtc { aac transcode; bframe keep; } }", func(c *Config) any { return c.Vhosts["v"].RTC.RTMPToRTC && c.Vhosts["v"].RTC.KeepBframe }, true},
		{"dtls", "vhost v { rtc { dtls_role active; dtls_version dtls1.2; drop_for_pt 96; } }", func(c *Config) any {
			r := c.Vhosts["v"].RTC
			return fmt.Sprint(r.DTLSRole, " ", r.DTLSVersion, " ", r.DropForPT)
		}, "active dtls1.2 96"},
		{"log v1", "srs_log_level WARN;", func(c *Config) any { return c.LogLevel }, "warn"},
		{"log v2 wins", "srs_log_level_v2 info; srs_log_level error;", func(c *Config) any { return c.LogLevel }, "trace"},
		{"fastpath", "fastpath { cores 3; batch 32; gso off; bpf off; frame_wait 0; keyframe_replay_age 0; keyframe_replay_bytes 0; }",
			func(c *Config) any { return c.Fastpath }, Fastpath{Cores: 3, Batch: 32, BPF: "off", FrameWait: -1, ReplayMaxAge: -1, ReplayMaxBytes: -1, XDPSTUNRate: 20, XDPSTUNBurst: 40, XDPMode: "shield"}},
		{"keyframe replay bounds", "fastpath { keyframe_replay_age 0.5; keyframe_replay_bytes 300000; }",
			func(c *Config) any { return [2]any{c.Fastpath.ReplayMaxAge, c.Fastpath.ReplayMaxBytes} }, [2]any{500 * time.Millisecond, 300000}},
		{"xdp", "fastpath { xdp veth0 eth1; xdp_stun_rate 5; xdp_stun_burst 9; }", func(c *Config) any {
			f := c.Fastpath
			return fmt.Sprint(f.XDP, f.XDPSTUNRate, f.XDPSTUNBurst, " ", f.XDPMode)
		}, "[veth0 eth1] 5 9 shield"},
		{"xdp afxdp", "fastpath { xdp veth0; xdp_mode afxdp; }", func(c *Config) any { return c.Fastpath.XDPMode }, "afxdp"},
		{"xdp off", "fastpath { xdp off; }", func(c *Config) any { return c.Fastpath.XDP == nil }, true},
		{"frame wait", "fastpath { frame_wait 250; }", func(c *Config) any { return c.Fastpath.FrameWait }, 250 * time.Microsecond},
		{"cores auto", "fastpath { cores auto; }", func(c *Config) any { return c.Fastpath.Cores }, 0},
		{"https v7", "https_api { enabled on; listen [::]:1990; key k; cert c; }", func(c *Config) any { return c.HTTPAPI.HTTPS }, HTTPS{true, ap("[::]:1990"), "k", "c"}},
		{"https srs", "http_server { https { enabled on; listen 443; } }", func(c *Config) any { return c.HTTPServer.HTTPS.Listen }, ap("[::]:443")},
		{"auth", "http_api { auth { enabled on; username u; password 'p w'; } }", func(c *Config) any { return c.HTTPAPI.Auth }, HTTPAuth{Enabled: true, Username: "u", Password: "p w"}},
		{"hls", "vhost v { hls { enabled on; hls_fragment 2.5; hls_window 30; hls_path /tmp/h; } }", func(c *Config) any { return c.Vhosts["v"].HLS }, HLS{true, 2500 * time.Millisecond, 30 * time.Second, "/tmp/h"}},
		{"quoted directive", `"daemon" "off";`, func(c *Config) any { return c.Daemon }, false},
		{"comments", "daemon off; # daemon on;\n", func(c *Config) any { return c.Daemon }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.src)
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorsNameFileLine(t *testing.T) {
	tests := []struct {
		name, src, where string
		sentinel         error
	}{
		{"listen abc", "daemon off;\nlisten abc;\n", "test.conf:2: listen", ErrValue},
		{"port range", "listen 70000;", "test.conf:1: listen", ErrValue},
		{"nack maybe", "vhost v {\n  rtc {\n    nack maybe;\n  }\n}\n", "test.conf:3: vhost.rtc.nack", ErrValue},
		{"stun -1", "vhost v {\n rtc { stun_timeout -1; } }", "test.conf:2: vhost.rtc.stun_timeout", ErrValue},
		{"protocol foo", "rtc_server {\n\n protocol foo;\n}", "test.conf:3: rtc_server.protocol", ErrValue},
		{"flag arity", "daemon on off;", "test.conf:1: daemon", ErrValue},
		{"missing value", "daemon;", "test.conf:1: daemon", ErrValue},
		{"section not block", "rtc_server on;", "test.conf:1: rtc_server", ErrValue},
		{"leaf as block", "daemon { }", "test.conf:1: daemon", ErrValue},
		{"vhost no name", "vhost { }", "test.conf:1: vhost", ErrValue},
		{"bad host", "http_api { listen example.org:1985; }", "test.conf:1: http_api.listen", ErrValue},
		{"port 0", "http_api {\n listen 0; }", "test.conf:2: http_api.listen", ErrValue},
		{"v6 no brackets", "rtc_server { tcp {\n listen ::1:8000; } }", "test.conf:2: rtc_server.tcp.listen", ErrValue},
		{"frame wait range", "fastpath {\n\n frame_wait 20000; }", "test.conf:3: fastpath.frame_wait", ErrValue},
		{"frame wait unit", "fastpath { frame_wait 50us; }", "test.conf:1: fastpath.frame_wait", ErrValue},
		{"xdp off and more", "fastpath { xdp eth0 off; }", "test.conf:1: fastpath.xdp", ErrValue},
		{"xdp long name", "fastpath { xdp abcdefghijklmnopq; }", "test.conf:1: fastpath.xdp", ErrValue},
		{"keyframe replay age range", "fastpath { keyframe_replay_age 120; }", "test.conf:1: fastpath.keyframe_replay_age", ErrValue},
		{"hls fragment 0", "vhost v { hls {\n hls_fragment 0; } }", "test.conf:2: vhost.hls.hls_fragment", ErrValue},
		{"hls window nan", "vhost v { hls { hls_window long; } }", "test.conf:1: vhost.hls.hls_window", ErrValue},
		{"bitrate nan", "vhost v { rtc { opus_bitrate fast; } }", "test.conf:1: vhost.rtc.opus_bitrate", ErrValue},
		{"unclosed", "rtc_server {\n enabled on;\n", "test.conf:", ErrSyntax},
		{"extra brace", "daemon off;\n}\n", "test.conf:2", ErrSyntax},
		{"no semicolon", "vhost v {\n rtc { enabled on }\n}", "test.conf:2", ErrSyntax},
		{"unterminated", "daemon off", "test.conf:1", ErrSyntax},
		{"anonymous block", "daemon off;\n{ }", "test.conf:2", ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v (%T): want *Error wrapping %v", err, err, tc.sentinel)
			}
			if !strings.HasPrefix(err.Error(), tc.where) {
				t.Errorf("error %q does not start with %q", err, tc.where)
			}
		})
	}
}

func TestFallbackWarns(t *testing.T) {
	c, warns, err := parse(t, "vhost v {\n rtc {\n pli_for_rtmp 60;\n opus_bitrate 1000;\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Vhosts["v"].RTC
	if r.PLIForRTMP != 6*time.Second || r.OpusBitrate != 48000 {
		t.Errorf("fallback not applied: %+v", r)
	}
	if len(warns) != 2 || !strings.HasPrefix(warns[0], "test.conf:3: vhost.rtc.pli_for_rtmp") ||
		!strings.HasPrefix(warns[1], "test.conf:4: vhost.rtc.opus_bitrate") {
		t.Errorf("warnings %q", warns)
	}
}

func TestUnknownWarnedOnce(t *testing.T) {
	src := `max_conections 1000;
max_conections 2000;
http_hooks { enabled on; on_publish http://x; }
vhost a { gop_cache off; plya { mw_latency 0; } rtc { enabled on; merge_nalus on; } }
vhost b { gop_cache on; plya { mw_msgs 0; } }
`
	c, warns, err := parse(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Vhosts["a"].RTC.Enabled {
		t.Error("known directive beside unknown ones was not applied")
	}
	want := []string{
		`test.conf:1: unknown directive "max_conections" (max_conections) ignored`,
		`test.conf:3: unknown directive "http_hooks" (http_hooks) ignored`,
		`test.conf:4: unknown directive "gop_cache" (vhost.gop_cache) ignored`,
		`test.conf:4: unknown directive "plya" (vhost.plya) ignored`,
		`test.conf:4: unknown directive "merge_nalus" (vhost.rtc.merge_nalus) ignored`,
	}
	if !slices.Equal(warns, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warns, want)
	}
}

func TestDuplicates(t *testing.T) {
	c, warns, err := parse(t, "daemon off;\ndaemon on;\nvhost v { rtc { enabled on; } }\nvhost v { rtc { enabled off; } }\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon || !c.Vhosts["v"].RTC.Enabled {
		t.Errorf("first directive must win (SRS): daemon=%v rtc=%v", c.Daemon, c.Vhosts["v"].RTC.Enabled)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "test.conf:2") || !strings.Contains(warns[1], "test.conf:4") {
		t.Errorf("warnings %q", warns)
	}
}

func TestVars(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  []string
		want []string
	}{
		{"set", "rtc_server { candidate $CANDIDATE; }", []string{"CANDIDATE=10.0.0.1"}, []string{"10.0.0.1"}},
		{"braces", "rtc_server { candidate ${CANDIDATE}; }", []string{"CANDIDATE=10.0.0.1"}, []string{"10.0.0.1"}},
		{"unset", "rtc_server { candidate $CANDIDATE; }", nil, []string{"*"}},
		{"empty", "rtc_server { candidate $CANDIDATE; }", []string{"CANDIDATE="}, []string{"*"}},
		{"mixed", "rtc_server { candidate $A 1.2.3.4 $B; }", []string{"B=5.6.7.8"}, []string{"1.2.3.4", "5.6.7.8"}},
		{"env candidate is var", "", []string{"SRS_RTC_SERVER_CANDIDATE=$MYIP", "MYIP=9.9.9.9"}, []string{"9.9.9.9"}},
		{"env candidate var unset beats file", "rtc_server { candidate 1.1.1.1; }", []string{"SRS_RTC_SERVER_CANDIDATE=$MYIP"}, []string{"*"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.src, tc.env...)
			if !slices.Equal(c.RTCServer.Candidates, tc.want) {
				t.Errorf("got %q, want %q", c.RTCServer.Candidates, tc.want)
			}
		})
	}
	t.Run("unset var keeps default", func(t *testing.T) {
		c := mustParse(t, "listen $RTMP_PORT; http_api { listen $API; }", "API=[::]:2000")
		if !slices.Equal(c.Listen, []netip.AddrPort{ap("[::]:1935")}) || c.HTTPAPI.Listen != ap("[::]:2000") {
			t.Errorf("listen %q api %q", c.Listen, c.HTTPAPI.Listen)
		}
	})
	t.Run("var value validated", func(t *testing.T) {
		if _, _, err := parse(t, "listen\n$P;", "P=abc"); err == nil || !strings.HasPrefix(err.Error(), "test.conf:1: listen") {
			t.Errorf("err %v", err)
		}
	})
}

func TestEnvOverrides(t *testing.T) {
	src := `listen 1935; daemon on;
http_api { enabled off; listen 1985; }
rtc_server { enabled off; listen 8000; protocol udp; tcp { enabled off; } }
fastpath { batch 16; }
vhost a { rtc { nack on; rtmp_to_rtc off; } }`
	env := []string{
		"SRS_LISTEN=1936 1937", "SRS_DAEMON=off", "SRS_LOG_TANK=file", "SRS_LOG_LEVEL=warn",
		"SRS_HTTP_API_ENABLED=on", "SRS_HTTP_API_LISTEN=2985", "SRS_HTTP_API_CROSSDOMAIN=off",
		"SRS_HTTP_SERVER_LISTEN=9090", "SRS_RTC_SERVER_ENABLED=on", "SRS_RTC_SERVER_LISTEN=9000",
		"SRS_RTC_SERVER_TCP_ENABLED=on", "SRS_RTC_SERVER_TCP_LISTEN=443", "SRS_RTC_SERVER_PROTOCOL=all",
		"SRS_RTC_SERVER_USE_AUTO_DETECT_NETWORK_IP=off", "SRS_RTC_SERVER_IP_FAMILY=all",
		"SRS_RTC_SERVER_API_AS_CANDIDATES=off", "SRS_FASTPATH_CORES=2", "SRS_FASTPATH_BATCH=8",
		"SRS_VHOST_RTC_NACK=off", "SRS_VHOST_RTC_RTMP_TO_RTC=on", "SRS_VHOST_HTTP_REMUX_ENABLED=on",
		"SRS_VHOST_RTC_STUN_TIMEOUT=10",
	}
	c := mustParse(t, src, env...)
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, []netip.AddrPort{ap("[::]:1936"), ap("[::]:1937")}},
		{"daemon", c.Daemon, false},
		{"log tank alias", c.LogTank, "file"},
		{"log level alias", c.LogLevel, "warn"},
		{"api", c.HTTPAPI.Enabled, true},
		{"api listen", c.HTTPAPI.Listen, ap("[::]:2985")},
		{"crossdomain", c.HTTPAPI.Crossdomain, false},
		{"server listen", c.HTTPServer.Listen, ap("[::]:9090")},
		{"rtc", c.RTCServer.Enabled, true},
		{"rtc listen", c.RTCServer.Listen, []netip.AddrPort{ap("[::]:9000")}},
		{"tcp", c.RTCServer.TCP, RTCTCP{true, ap("[::]:443")}},
		{"protocol", c.RTCServer.Protocol, "all"},
		{"auto detect", c.RTCServer.UseAutoDetectNetworkIP, false},
		{"ip family", c.RTCServer.IPFamily, "all"},
		{"api as candidates", c.RTCServer.APIAsCandidates, false},
		{"cores", c.Fastpath.Cores, 2},
		{"batch", c.Fastpath.Batch, 8},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	for _, name := range []string{"a", DefaultVhost} {
		t.Run("vhost "+name, func(t *testing.T) {
			v := c.Vhosts[name]
			if v.RTC.NACK || !v.RTC.RTMPToRTC || !v.HTTPRemux.Enabled || v.RTC.STUNTimeout != 10*time.Second {
				t.Errorf("env not applied to all vhosts: %+v %+v", v.RTC, v.HTTPRemux)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct{ env, want string }{
		{"SRS_RTC_SERVER_PROTOCOL=foo", "env: SRS_RTC_SERVER_PROTOCOL: bad value"},
		{"SRS_VHOST_RTC_NACK=maybe", "env: SRS_VHOST_RTC_NACK: bad value"},
		{"SRS_LISTEN=abc", "env: SRS_LISTEN: bad value"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			_, _, err := parse(t, "", tc.env)
			if err == nil || !errors.Is(err, ErrValue) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestEnvTableNames(t *testing.T) {
	// Every directive has its SRS-style env name, derived from the table.
	want := map[string]string{
		"rtc_server.use_auto_detect_network_ip": "SRS_RTC_SERVER_USE_AUTO_DETECT_NETWORK_IP",
		"http_api.https.enabled":                "SRS_HTTP_API_HTTPS_ENABLED",
		"srs_log_tank":                          "SRS_SRS_LOG_TANK",
		"fastpath.gso":                          "SRS_FASTPATH_GSO",
		"fastpath.xdp":                          "SRS_FASTPATH_XDP",
		"fastpath.xdp_mode":                     "SRS_FASTPATH_XDP_MODE",
	}
	for path, env := range want {
		if e := rootTable.entries[path]; e == nil || e.env[0] != env {
			t.Errorf("%s: env %v, want %s", path, e, env)
		}
	}
	if e := vhostTable.entries["http_remux.enabled"]; e.env[0] != "SRS_VHOST_HTTP_REMUX_ENABLED" {
		t.Errorf("vhost env %v", e.env)
	}
}

func TestEnvOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.conf")
	if err := os.WriteFile(path, []byte("rtc_server { enabled on; } daemon on;"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, Options{Env: []string{"SRS_ENV_ONLY=on", "SRS_HTTP_API_ENABLED=on"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "" || c.RTCServer.Enabled || c.Daemon || c.LogTank != "console" || !c.HTTPAPI.Enabled {
		t.Errorf("env-only ignored the env or read the file: %+v", c)
	}
	c, err = Load(path, Options{Env: []string{}})
	if err != nil || c.File != path || !c.RTCServer.Enabled || !c.Daemon {
		t.Errorf("Load(file): %+v %v", c, err)
	}
	c, err = Load("", Options{Env: []string{"SRS_CONFIG_FILE=" + path}})
	if err != nil || c.File != path {
		t.Errorf("SRS_CONFIG_FILE: %+v %v", c, err)
	}
	_, err = Load(filepath.Join(dir, "missing.conf"), Options{Env: []string{}})
	if !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDefault(t *testing.T) {
	var warns []string
	c, err := Default(Options{Env: []string{}, Warn: func(m string) { warns = append(warns, m) }})
	if err != nil || len(warns) > 0 {
		t.Fatalf("Default: %v %q", err, warns)
	}
	r := c.Vhost("any").RTC
	switch {
	case c.File != "":
		t.Errorf("File %q", c.File)
	case !c.RTCServer.Enabled || !slices.Equal(c.RTCServer.Candidates, []string{"*"}):
		t.Errorf("rtc_server %+v", c.RTCServer)
	case !c.HTTPAPI.Enabled || c.HTTPAPI.Listen != ap("[::]:1985") || !c.HTTPServer.Enabled || c.HTTPServer.Listen != ap("[::]:8080"):
		t.Errorf("http %+v %+v", c.HTTPAPI, c.HTTPServer)
	case !r.Enabled || r.RTMPToRTC || r.RTCToRTMP:
		t.Errorf("vhost rtc %+v", r)
	case c.Daemon:
		t.Error("daemon on")
	}
	c, err = Default(Options{Env: []string{"CANDIDATE=7.7.7.7", "SRS_RTC_SERVER_LISTEN=18000"}})
	if err != nil || c.RTCServer.Candidates[0] != "7.7.7.7" || c.RTCServer.Listen[0] != ap("[::]:18000") {
		t.Errorf("Default with env: %+v %v", c.RTCServer, err)
	}
}

// TestParseListen: a port alone is the dual-stack wildcard, 0.0.0.0 is
// IPv4 only, port 0 is allowed here (overrides, tests) but not in a file.
func TestParseListen(t *testing.T) {
	good := map[string]netip.AddrPort{
		"8000": ap("[::]:8000"), ":8000": ap("[::]:8000"), "[::]:8000": ap("[::]:8000"),
		"0.0.0.0:8000": ap("0.0.0.0:8000"), "127.0.0.1:0": ap("127.0.0.1:0"), "[::1]:0": ap("[::1]:0"),
		"localhost:1985": ap("127.0.0.1:1985"), "0": ap("[::]:0"),
	}
	for in, want := range good {
		if got, err := ParseListen(in); err != nil || got != want {
			t.Errorf("ParseListen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "65536", "-1", "::1:80", "[::1]", "[1.2.3.4]:80", "host:80", "[fe80::1%lo]:80", "1.2.3.4:"} {
		if got, err := ParseListen(in); !errors.Is(err, ErrValue) {
			t.Errorf("ParseListen(%q) = %v, %v; want ErrValue", in, got, err)
		}
	}
}
