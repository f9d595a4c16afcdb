package conf

// SRS directives that Fanout accepts without a warning and does not act on,
// because it has no such feature (DVR, SRT, clustering, …) or because the
// setting has no meaning for it (pid files, tcmalloc, daemon reload tricks).
// The names are those SRS's own config check (SrsConfig::check_normal_config,
// v6 and v7) accepts, so a config written for SRS loads without noise while a
// misspelt or made-up directive is still warned about. README.md's
// "Configuration" section lists them beside the directives Fanout honours.
//
// A path names the first directive the tables do not know; for a block
// (heartbeat, dvr, …) that covers everything inside it. Root paths are
// relative to the top level, vhost paths to a `vhost name { }` block.
var (
	srsRootIgnored = set(
		// Process and logging knobs Fanout has no use for.
		"pid", "chunk_size", "ff_log_dir", "ff_log_level", "pithy_print_ms", "utc_time",
		"work_dir", "asprocess", "server_id", "empty_ip_ok", "grace_start_wait",
		"grace_final_wait", "force_grace_quit", "disable_daemon_for_docker",
		"inotify_auto_reload", "auto_reload_for_docker", "tcmalloc_release_rate",
		"query_latest_version", "first_wait_for_qlv", "is_full", "in_docker",
		// Whole blocks for features Fanout does not have. Fanout's metrics are
		// always served on the API port's /metrics, so exporter is not needed.
		"heartbeat", "stats", "circuit_breaker", "threads", "exporter",
		"tencentcloud_apm", "tencentcloud_cls", "stream_caster", "srt_server",
		"rtsp_server", "rtmps",
		// Parts of blocks Fanout otherwise honours.
		"rtmp.chunk_size",
		"http_api.raw_api", "http_server.crossdomain",
		"rtc_server.merge_nalus", "rtc_server.black_hole", "rtc_server.dir",
	)
	srsVhostIgnored = set(
		// vhost-level RTMP tuning.
		"enabled", "chunk_size", "min_latency", "tcp_nodelay", "in_ack_size", "out_ack_size",
		// Whole blocks for features Fanout does not have. security and refer
		// are SRS's access lists: Fanout does not enforce them (use http_hooks).
		"dvr", "ingest", "transcode", "forward", "exec", "dash", "hds", "bandcheck",
		"cluster", "security", "refer", "play", "publish", "http_static", "srt", "rtsp",
		// Parts of blocks Fanout otherwise honours.
		"rtc.init_rate_from_sdp",
		"http_remux.fast_cache", "http_remux.drop_if_not_match", "http_remux.has_audio",
		"http_remux.has_video", "http_remux.guess_has_av",
		"http_hooks.on_connect", "http_hooks.on_close", "http_hooks.on_dvr",
		"http_hooks.on_hls", "http_hooks.on_hls_notify",
		"hls.hls_entry_prefix", "hls.hls_on_error", "hls.hls_storage", "hls.hls_mount",
		"hls.hls_td_ratio", "hls.hls_aof_ratio", "hls.hls_acodec", "hls.hls_vcodec",
		"hls.hls_m3u8_file", "hls.hls_ts_file", "hls.hls_ts_floor", "hls.hls_cleanup",
		"hls.hls_nb_notify", "hls.hls_wait_keyframe", "hls.hls_dispose", "hls.hls_keys",
		"hls.hls_fragments_per_key", "hls.hls_key_file", "hls.hls_key_file_path",
		"hls.hls_key_url", "hls.hls_dts_directly", "hls.hls_ctx", "hls.hls_ts_ctx",
		"hls.hls_use_fmp4", "hls.hls_fmp4_file", "hls.hls_init_file", "hls.hls_recover",
		"hls.hls_master_m3u8_path_relative",
	)
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// srsIgnored reports whether path (relative to its scope) is an SRS
// directive Fanout accepts and ignores.
func srsIgnored(t target, path string) bool {
	if t.v != nil {
		return srsVhostIgnored[path]
	}
	return srsRootIgnored[path]
}
