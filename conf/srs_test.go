package conf

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// srsStyle is a config as SRS users write them: SRS's global directives and
// blocks Fanout has no feature for, next to the ones it honours.
const srsStyle = `listen              1935;
max_connections     2000;
pid                 ./objs/srs.pid;
chunk_size          60000;
ff_log_dir          ./objs;
ff_log_level        info;
srs_log_tank        file;
srs_log_level_v2    info;
srs_log_file        ./objs/srs.log;
daemon              on;
utc_time            off;
pithy_print_ms      10000;
work_dir            ./;
asprocess           off;
empty_ip_ok         on;
grace_start_wait    2300;
grace_final_wait    3200;
force_grace_quit    off;
disable_daemon_for_docker on;
inotify_auto_reload off;
auto_reload_for_docker on;
tcmalloc_release_rate 0.8;
query_latest_version on;
first_wait_for_qlv  30;
server_id           srs-a1b2c3;
in_docker           on;
rtmp { listen 1936; chunk_size 60000; }
heartbeat { enabled off; interval 9.3; url http://127.0.0.1:8085/api/v1/servers; device_id "my-srs-device"; summaries off; }
stats { enabled on; network 0; disk sda sdb xvda xvdb; }
circuit_breaker { enabled on; high_threshold 90; high_pulse 2; critical_threshold 95; critical_pulse 1; dying_threshold 99; dying_pulse 5; }
threads { interval 10; }
exporter { enabled off; listen 9972; label cn-beijing; tag cn-edge; }
tencentcloud_cls { enabled off; }
tencentcloud_apm { enabled off; }
stream_caster { enabled off; caster mpegts_over_udp; output rtmp://127.0.0.1/live/livestream; listen 8935; }
stream_caster { enabled off; caster gb28181; sip { enabled on; listen 5060; } }
srt_server { enabled on; listen 10080; maxbw 1000000000; connect_timeout 4000; peerlatency 0; recvlatency 0; latency 0; tsbpdmode off; tlpktdrop off; sendbuf 2000000; recvbuf 2000000; }
rtsp_server { enabled off; listen 554; }
rtmps { enabled off; listen 1443; key ./conf/server.key; cert ./conf/server.crt; }
http_api { enabled on; listen 1985; crossdomain on; raw_api { enabled off; allow_reload off; allow_query off; allow_update off; } auth { enabled off; username admin; password admin; } }
http_server { enabled on; listen 8080; dir ./objs/nginx/html; crossdomain on; }
rtc_server { enabled on; listen 8000; candidate $CANDIDATE; merge_nalus off; black_hole { enabled off; addr 127.0.0.1:10000; } }
vhost __defaultVhost__ {
    enabled on;
    min_latency on;
    tcp_nodelay on;
    chunk_size 128;
    in_ack_size 0;
    out_ack_size 2500000;
    play { gop_cache off; queue_length 10; mw_latency 100; mw_msgs 8; time_jitter full; atc off; }
    publish { mr off; mr_latency 350; firstpkt_timeout 20000; normal_timeout 5000; parse_sps on; kickoff_for_idle 0; }
    dvr { enabled off; dvr_plan session; dvr_path ./objs/nginx/html/[app]/[stream].[timestamp].flv; dvr_duration 30; dvr_wait_keyframe on; }
    http_static { enabled on; mount [vhost]/hls; dir ./objs/nginx/html; }
    http_remux { enabled on; mount [vhost]/[app]/[stream].flv; fast_cache 30; drop_if_not_match off; has_audio on; has_video on; guess_has_av on; }
    hls { enabled on; hls_fragment 2; hls_window 10; hls_path ./objs/nginx/html; hls_m3u8_file [app]/[stream].m3u8; hls_ts_file [app]/[stream]-[seq].ts; hls_cleanup on; hls_dispose 0; hls_wait_keyframe on; }
    http_hooks { enabled off; on_connect http://127.0.0.1:8085/api/v1/clients; on_close http://127.0.0.1:8085/api/v1/clients; on_publish http://127.0.0.1:8085/api/v1/streams; on_dvr http://127.0.0.1:8085/api/v1/dvrs; on_hls http://127.0.0.1:8085/api/v1/hls; }
    rtc { enabled on; nack on; twcc on; stun_timeout 30; init_rate_from_sdp off; }
    srt { enabled on; srt_to_rtmp on; }
    rtsp { enabled off; rtmp_to_rtsp off; }
    cluster { mode local; origin_cluster off; coworkers 127.0.0.1:9091; }
    forward { enabled off; destination 127.0.0.1:19350; }
    exec { enabled off; publish ./objs/ffmpeg/bin/ffmpeg -f flv -i [url] -c copy -y ./[stream].flv; }
    dash { enabled off; dash_fragment 30; }
    ingest livestream { enabled off; input { type file; url ./doc/source.flv; } ffmpeg ./objs/ffmpeg/bin/ffmpeg; engine { enabled off; output rtmp://127.0.0.1:[port]/live?vhost=[vhost]/livestream; } }
    transcode live/livestream { enabled off; ffmpeg ./objs/ffmpeg/bin/ffmpeg; engine example { enabled on; vcodec libx264; vbitrate 1500; vfilter { } output rtmp://127.0.0.1:[port]/[app]?vhost=[vhost]/[stream]_[engine]; } }
}
vhost security.srs.com {
    security { enabled on; deny publish all; allow play all; }
    refer { enabled on; all github.com; }
}
`

// TestSRSDirectivesAccepted: a config written for SRS loads without a
// warning, and the directives Fanout honours keep their meaning beside the
// ones it ignores.
func TestSRSDirectivesAccepted(t *testing.T) {
	c := mustParse(t, srsStyle, "CANDIDATE=192.168.3.10")
	if c.MaxConnections != 2000 || !slices.Equal(c.Listen, []netip.AddrPort{AnyPort(1936)}) || c.LogTank != "file" ||
		c.LogLevel != "trace" || !c.HTTPAPI.Enabled || !slices.Equal(c.RTCServer.Candidates, []string{"192.168.3.10"}) {
		t.Errorf("honoured directives lost: max_connections=%d listen=%q tank=%q level=%q api=%v candidates=%q",
			c.MaxConnections, c.Listen, c.LogTank, c.LogLevel, c.HTTPAPI.Enabled, c.RTCServer.Candidates)
	}
	v := c.Vhost(DefaultVhost)
	if !v.RTC.Enabled || !v.HTTPRemux.Enabled || v.HLS.Fragment != 2*time.Second || v.HLS.Window != 10*time.Second || v.HTTPHooks.Enabled ||
		len(v.HTTPHooks.OnPublish) != 1 {
		t.Errorf("vhost directives lost: %+v", v)
	}
	if _, ok := c.Vhosts["security.srs.com"]; !ok {
		t.Error("vhost with only ignored blocks not created")
	}
}

// TestTyposStillWarn: a directive SRS does not have is warned about even
// inside or beside blocks whose SRS directives are ignored silently.
func TestTyposStillWarn(t *testing.T) {
	src := `max_connection 1000;
heartbeat { enabled off; }
rtc_server { enabled on; merge_nalu off; }
vhost v {
    play { gop_cache off; }
    hls { enabled on; hls_fragmnet 2; hls_ts_file x.ts; }
    rtc { enabled on; nak on; }
}
`
	_, warns, err := parse(t, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`test.conf:1: unknown directive "max_connection" (max_connection) ignored`,
		`test.conf:3: unknown directive "merge_nalu" (rtc_server.merge_nalu) ignored`,
		`test.conf:6: unknown directive "hls_fragmnet" (vhost.hls.hls_fragmnet) ignored`,
		`test.conf:7: unknown directive "nak" (vhost.rtc.nak) ignored`,
	}
	if !slices.Equal(warns, want) {
		t.Errorf("warnings:\n got %q\nwant %q", warns, want)
	}
}

func TestMaxConnections(t *testing.T) {
	if c := mustParse(t, ""); c.MaxConnections != 1000 {
		t.Errorf("default %d, want SRS's 1000", c.MaxConnections)
	}
	if c := mustParse(t, "max_connections 3000;"); c.MaxConnections != 3000 {
		t.Errorf("file: %d", c.MaxConnections)
	}
	if c := mustParse(t, "max_connections 3000;", "SRS_MAX_CONNECTIONS=50"); c.MaxConnections != 50 {
		t.Errorf("SRS_MAX_CONNECTIONS must win over the file: %d", c.MaxConnections)
	}
	for _, bad := range []string{"max_connections 0;", "max_connections lots;", "max_connections 1 2;"} {
		if _, _, err := parse(t, bad); !errors.Is(err, ErrValue) {
			t.Errorf("%s: err %v, want ErrValue", bad, err)
		}
	}
	if _, _, err := parse(t, "", "SRS_MAX_CONNECTIONS=-1"); !errors.Is(err, ErrValue) ||
		!strings.Contains(err.Error(), "SRS_MAX_CONNECTIONS") {
		t.Errorf("bad env: %v", err)
	}
}

// TestRTMPListenV7: SRS v7's `rtmp { listen …; }` sets the RTMP port.
func TestRTMPListenV7(t *testing.T) {
	if c := mustParse(t, "rtmp { listen 19350; }"); !slices.Equal(c.Listen, []netip.AddrPort{AnyPort(19350)}) {
		t.Errorf("listen %v", c.Listen)
	}
}

// TestREADMENamesIgnored keeps README.md's directive table true: every
// directive srs.go accepts and ignores is named there (the hls_* options
// as "every other `hls_*`").
func TestREADMENamesIgnored(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, names := range []map[string]bool{srsRootIgnored, srsVhostIgnored} {
		for path := range names {
			name := "`" + path[strings.LastIndexByte(path, '.')+1:]
			if strings.HasPrefix(path, "hls.") {
				name = "every other `hls_*`"
			}
			if !strings.Contains(readme, name) {
				t.Errorf("README.md does not name %s", path)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	c := mustParse(t, "")
	if c.Limits != defaultLimits() {
		t.Errorf("defaults %+v", c.Limits)
	}
	c = mustParse(t, `limits { requests_per_ip 2.5; sdp_size 4096; http_read_timeout 3; exempt_loopback off;
		tcp_connections_per_ip 0; players_per_stream 7; rtmp_connections_per_ip 3; live_requests_per_ip 4;
		live_request_burst 5; flv_streams_per_ip 6; }`)
	l := c.Limits
	if l.RequestsPerIP != 2.5 || l.SDPSize != 4096 || l.HTTPReadTimeout != 3*time.Second || l.ExemptLoopback ||
		l.TCPConnsPerIP != 0 || l.PlayersPerStream != 7 || l.SessionsPerIP != 20 ||
		l.RTMPConnsPerIP != 3 || l.LiveRequestsPerIP != 4 || l.LiveRequestBurst != 5 || l.FLVStreamsPerIP != 6 {
		t.Errorf("parsed %+v", l)
	}
	if _, err := Parse("x.conf", []byte("limits { requests_per_ip -1; }"), Options{Env: []string{}}); err == nil {
		t.Error("a negative rate was accepted")
	}
	c, err := Parse("x.conf", nil, Options{Env: []string{"SRS_LIMITS_PUBLISHERS_PER_IP=3"}})
	if err != nil || c.Limits.PublishersPerIP != 3 {
		t.Errorf("env override: %v %+v", err, c.Limits)
	}
	d, err := Default(Options{Env: []string{}})
	if err != nil || d.MaxConnections != 10000 || d.Limits != defaultLimits() {
		t.Errorf("embedded default: %v max_connections=%d limits=%+v", err, d.MaxConnections, d.Limits)
	}
}
