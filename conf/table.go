package conf

import (
	"net/netip"
	"strings"
	"time"
)

// entry is one leaf directive. The same setter serves the file and the
// SRS_* environment override, so both accept exactly the same values.
type entry struct {
	path  string   // dotted, relative to the root or to a vhost block
	set   setter   // parses args and stores the value
	alias []string // extra env names SRS also reads, after the derived one
	// empty: call set even when every argument was an unset $VAR (candidate).
	empty bool
	env   []string // derived: SRS_<PATH> (or SRS_VHOST_<PATH>), then alias
}

// table indexes the entries of one scope (root or vhost).
type table struct {
	list     []*entry          // in declaration order, for env overrides
	entries  map[string]*entry // by path
	sections map[string]bool   // every proper prefix of a path is a block
}

func newTable(envPrefix string, list []*entry) *table {
	t := &table{list: list, entries: map[string]*entry{}, sections: map[string]bool{}}
	for _, e := range list {
		t.entries[e.path] = e
		e.env = append([]string{envPrefix + strings.ToUpper(strings.ReplaceAll(e.path, ".", "_"))}, e.alias...)
		parts := strings.Split(e.path, ".")
		for i := 1; i < len(parts); i++ {
			t.sections[strings.Join(parts[:i], ".")] = true
		}
	}
	return t
}

// rootTable holds every directive outside vhost blocks.
var rootTable = newTable("SRS_", concat(
	[]*entry{
		{path: "listen", set: global(func(c *Config) *[]netip.AddrPort { return &c.Listen }, listenList), alias: []string{"SRS_RTMP_LISTEN"}},
		// SRS v7 spells the RTMP port `rtmp { listen 1935; }`; same field.
		{path: "rtmp.listen", set: global(func(c *Config) *[]netip.AddrPort { return &c.Listen }, listenList)},
		{path: "max_connections", set: global(func(c *Config) *int { return &c.MaxConnections }, intIn(1, 10_000_000))},
		{path: "daemon", set: global(func(c *Config) *bool { return &c.Daemon }, flag)},
		{path: "srs_log_tank", set: global(func(c *Config) *string { return &c.LogTank }, enum("console", "file")), alias: []string{"SRS_LOG_TANK"}},
		{path: "srs_log_level", set: setLogLevel, alias: []string{"SRS_LOG_LEVEL"}},
		{path: "srs_log_level_v2", set: setLogLevelV2, alias: []string{"SRS_LOG_LEVEL_V2"}},
		{path: "srs_log_file", set: global(func(c *Config) *string { return &c.LogFile }, text), alias: []string{"SRS_LOG_FILE"}},

		{path: "http_api.enabled", set: global(func(c *Config) *bool { return &c.HTTPAPI.Enabled }, flag)},
		{path: "http_api.listen", set: global(func(c *Config) *netip.AddrPort { return &c.HTTPAPI.Listen }, listenOne)},
		{path: "http_api.crossdomain", set: global(func(c *Config) *bool { return &c.HTTPAPI.Crossdomain }, flag)},
		{path: "http_api.auth.enabled", set: global(func(c *Config) *bool { return &c.HTTPAPI.Auth.Enabled }, flag)},
		{path: "http_api.auth.username", set: global(func(c *Config) *string { return &c.HTTPAPI.Auth.Username }, text)},
		{path: "http_api.auth.password", set: global(func(c *Config) *string { return &c.HTTPAPI.Auth.Password }, text)},
		// Fanout: RFC 9725 §4.5 Bearer token required on WHIP/WHEP when set.
		{path: "http_api.auth.bearer_token", set: global(func(c *Config) *string { return &c.HTTPAPI.Auth.BearerToken }, text)},

		{path: "http_server.enabled", set: global(func(c *Config) *bool { return &c.HTTPServer.Enabled }, flag)},
		{path: "http_server.listen", set: global(func(c *Config) *netip.AddrPort { return &c.HTTPServer.Listen }, listenOne)},
		{path: "http_server.dir", set: global(func(c *Config) *string { return &c.HTTPServer.Dir }, text)},

		{path: "rtc_server.enabled", set: global(func(c *Config) *bool { return &c.RTCServer.Enabled }, flag)},
		{path: "rtc_server.listen", set: global(func(c *Config) *[]netip.AddrPort { return &c.RTCServer.Listen }, listenList)},
		{path: "rtc_server.tcp.enabled", set: global(func(c *Config) *bool { return &c.RTCServer.TCP.Enabled }, flag)},
		{path: "rtc_server.tcp.listen", set: global(func(c *Config) *netip.AddrPort { return &c.RTCServer.TCP.Listen }, listenOne)},
		{path: "rtc_server.protocol", set: global(func(c *Config) *string { return &c.RTCServer.Protocol }, enum("udp", "tcp", "all"))},
		{path: "rtc_server.candidate", set: global(func(c *Config) *[]string { return &c.RTCServer.Candidates }, candidates), empty: true},
		{path: "rtc_server.use_auto_detect_network_ip", set: global(func(c *Config) *bool { return &c.RTCServer.UseAutoDetectNetworkIP }, flag)},
		{path: "rtc_server.ip_family", set: global(func(c *Config) *string { return &c.RTCServer.IPFamily }, enum("ipv4", "ipv6", "all"))},
		{path: "rtc_server.api_as_candidates", set: global(func(c *Config) *bool { return &c.RTCServer.APIAsCandidates }, flag)},
		{path: "rtc_server.resolve_api_domain", set: global(func(c *Config) *bool { return &c.RTCServer.ResolveAPIDomain }, flag)},
		{path: "rtc_server.keep_api_domain", set: global(func(c *Config) *bool { return &c.RTCServer.KeepAPIDomain }, flag)},
		{path: "rtc_server.ecdsa", set: global(func(c *Config) *bool { return &c.RTCServer.ECDSA }, flag)},
		{path: "rtc_server.encrypt", set: global(func(c *Config) *bool { return &c.RTCServer.Encrypt }, flag)},
		{path: "rtc_server.reuseport", set: global(func(c *Config) *int { return &c.RTCServer.Reuseport }, intIn(1, 256))},

		{path: "fastpath.cores", set: global(func(c *Config) *int { return &c.Fastpath.Cores }, cores)},
		{path: "fastpath.batch", set: global(func(c *Config) *int { return &c.Fastpath.Batch }, intIn(1, 1024))},
		{path: "fastpath.gso", set: global(func(c *Config) *bool { return &c.Fastpath.GSO }, flag)},
		{path: "fastpath.bpf", set: global(func(c *Config) *string { return &c.Fastpath.BPF }, enum("auto", "on", "off"))},
		{path: "fastpath.frame_wait", set: global(func(c *Config) *time.Duration { return &c.Fastpath.FrameWait }, microseconds)},
		{path: "fastpath.keyframe_replay_age", set: global(func(c *Config) *time.Duration { return &c.Fastpath.ReplayMaxAge }, secondsOff(time.Minute))},
		{path: "fastpath.keyframe_replay_bytes", set: global(func(c *Config) *int { return &c.Fastpath.ReplayMaxBytes }, intOff(64<<20))},
		{path: "fastpath.xdp", set: global(func(c *Config) *[]string { return &c.Fastpath.XDP }, interfaces)},
		{path: "fastpath.xdp_stun_rate", set: global(func(c *Config) *int { return &c.Fastpath.XDPSTUNRate }, intIn(1, 1000000))},
		{path: "fastpath.xdp_mode", set: global(func(c *Config) *string { return &c.Fastpath.XDPMode }, enum("shield", "afxdp"))},
		{path: "fastpath.xdp_stun_burst", set: global(func(c *Config) *int { return &c.Fastpath.XDPSTUNBurst }, intIn(1, 1000000))},

		// Fanout: several nodes on one Redis stream registry (control/cluster).
		{path: "cluster.enabled", set: global(func(c *Config) *bool { return &c.Cluster.Enabled }, flag)},
		{path: "cluster.redis", set: global(func(c *Config) *string { return &c.Cluster.Redis }, redisURL)},
		{path: "cluster.node_id", set: global(func(c *Config) *string { return &c.Cluster.NodeID }, nodeID)},
		{path: "cluster.advertise", set: global(func(c *Config) *string { return &c.Cluster.Advertise }, advertise)},
		{path: "cluster.redirect", set: global(func(c *Config) *bool { return &c.Cluster.Redirect }, flag)},
		{path: "cluster.ttl", set: global(func(c *Config) *time.Duration { return &c.Cluster.TTL }, secondsIn(time.Second, 5*time.Minute))},
		{path: "cluster.max_players", set: global(func(c *Config) *int { return &c.Cluster.MaxPlayers }, intIn(0, 10_000_000))},
	},
	// SRS's `https {}` inside http_api/http_server, and the v7 spelling
	// as top-level `https_api {}` / `https_server {}`: same fields.
	httpsEntries("http_api.https.", func(c *Config) *HTTPS { return &c.HTTPAPI.HTTPS }),
	httpsEntries("https_api.", func(c *Config) *HTTPS { return &c.HTTPAPI.HTTPS }),
	httpsEntries("http_server.https.", func(c *Config) *HTTPS { return &c.HTTPServer.HTTPS }),
	httpsEntries("https_server.", func(c *Config) *HTTPS { return &c.HTTPServer.HTTPS }),
	limitEntries(),
))

// vhostTable holds the directives inside `vhost name { }`; their env names
// are SRS_VHOST_<PATH> and apply to every vhost.
var vhostTable = newTable("SRS_VHOST_", []*entry{
	{path: "rtc.enabled", set: vhost(func(v *Vhost) *bool { return &v.RTC.Enabled }, flag)},
	{path: "rtc.nack", set: vhost(func(v *Vhost) *bool { return &v.RTC.NACK }, flag)},
	{path: "rtc.nack_no_copy", set: vhost(func(v *Vhost) *bool { return &v.RTC.NACKNoCopy }, flag)},
	{path: "rtc.twcc", set: vhost(func(v *Vhost) *bool { return &v.RTC.TWCC }, flag)},
	{path: "rtc.stun_timeout", set: vhost(func(v *Vhost) *time.Duration { return &v.RTC.STUNTimeout }, seconds(24*time.Hour))},
	{path: "rtc.stun_strict_check", set: vhost(func(v *Vhost) *bool { return &v.RTC.STUNStrictCheck }, flag)},
	{path: "rtc.dtls_role", set: vhost(func(v *Vhost) *string { return &v.RTC.DTLSRole }, enum("passive", "active", "auto"))},
	{path: "rtc.dtls_version", set: vhost(func(v *Vhost) *string { return &v.RTC.DTLSVersion }, enum("auto", "dtls1.0", "dtls1.2"))},
	{path: "rtc.drop_for_pt", set: vhost(func(v *Vhost) *int { return &v.RTC.DropForPT }, intIn(0, 127))},
	{path: "rtc.rtmp_to_rtc", set: vhost(func(v *Vhost) *bool { return &v.RTC.RTMPToRTC }, flag)},
	{path: "rtc.aac", set: vhost(func(v *Vhost) *bool { return &v.RTC.RTMPToRTC }, legacyAAC)},
	{path: "rtc.rtc_to_rtmp", set: vhost(func(v *Vhost) *bool { return &v.RTC.RTCToRTMP }, flag)},
	{path: "rtc.keep_bframe", set: vhost(func(v *Vhost) *bool { return &v.RTC.KeepBframe }, flag)},
	{path: "rtc.bframe", set: vhost(func(v *Vhost) *bool { return &v.RTC.KeepBframe }, legacyBframe)},
	{path: "rtc.keep_avc_nalu_sei", set: vhost(func(v *Vhost) *bool { return &v.RTC.KeepAVCNaluSEI }, flag)},
	{path: "rtc.pli_for_rtmp", set: vhost(func(v *Vhost) *time.Duration { return &v.RTC.PLIForRTMP },
		secondsOr(500*time.Millisecond, 30*time.Second, 6*time.Second))},
	{path: "rtc.opus_bitrate", set: vhost(func(v *Vhost) *int { return &v.RTC.OpusBitrate }, intOr(8000, 320000, 48000))},
	{path: "rtc.aac_bitrate", set: vhost(func(v *Vhost) *int { return &v.RTC.AACBitrate }, intOr(8000, 320000, 48000))},
	{path: "rtc.keyframe_cache", set: vhost(func(v *Vhost) *bool { return &v.RTC.KeyframeCache }, flag)},

	{path: "http_hooks.enabled", set: vhost(func(v *Vhost) *bool { return &v.HTTPHooks.Enabled }, flag)},
	{path: "http_hooks.on_publish", set: vhost(func(v *Vhost) *[]string { return &v.HTTPHooks.OnPublish }, urls)},
	{path: "http_hooks.on_unpublish", set: vhost(func(v *Vhost) *[]string { return &v.HTTPHooks.OnUnpublish }, urls)},
	{path: "http_hooks.on_play", set: vhost(func(v *Vhost) *[]string { return &v.HTTPHooks.OnPlay }, urls)},
	{path: "http_hooks.on_stop", set: vhost(func(v *Vhost) *[]string { return &v.HTTPHooks.OnStop }, urls)},

	{path: "http_remux.enabled", set: vhost(func(v *Vhost) *bool { return &v.HTTPRemux.Enabled }, flag)},
	{path: "http_remux.mount", set: vhost(func(v *Vhost) *string { return &v.HTTPRemux.Mount }, text)},

	{path: "hls.enabled", set: vhost(func(v *Vhost) *bool { return &v.HLS.Enabled }, flag)},
	{path: "hls.hls_fragment", set: vhost(func(v *Vhost) *time.Duration { return &v.HLS.Fragment }, seconds(24*time.Hour))},
	{path: "hls.hls_window", set: vhost(func(v *Vhost) *time.Duration { return &v.HLS.Window }, seconds(24*time.Hour))},
	{path: "hls.hls_path", set: vhost(func(v *Vhost) *string { return &v.HLS.Path }, text)},
})

func httpsEntries(prefix string, field func(*Config) *HTTPS) []*entry {
	return []*entry{
		{path: prefix + "enabled", set: global(func(c *Config) *bool { return &field(c).Enabled }, flag)},
		{path: prefix + "listen", set: global(func(c *Config) *netip.AddrPort { return &field(c).Listen }, listenOne)},
		{path: prefix + "key", set: global(func(c *Config) *string { return &field(c).Key }, text)},
		{path: prefix + "cert", set: global(func(c *Config) *string { return &field(c).Cert }, text)},
	}
}

func concat(lists ...[]*entry) []*entry {
	var out []*entry
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// setLogLevel: srs_log_level applies unless srs_log_level_v2 was given.
func setLogLevel(t target, args []string) error {
	l, err := logLevel(args)
	if err == nil && !t.c.levelV2 {
		t.c.LogLevel = l
	}
	return err
}

func setLogLevelV2(t target, args []string) error {
	l, err := logLevelV2(args)
	if err == nil {
		t.c.LogLevel, t.c.levelV2 = l, true
	}
	return err
}
