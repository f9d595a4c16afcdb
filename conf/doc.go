// Package conf owns Fanout's configuration: SRS's nginx-like config syntax,
// SRS's defaults, SRS_* environment overrides, validation with file:line in
// every error, the shipped sample files (rtc.conf, rtmp2rtc.conf, …) and the
// embedded default used when `fanout` runs with no config file.
//
// cmd/fanout loads it and cmd/internal/node hands the typed Config to
// control, bridge and fastpath settings; no other package reads config files
// or SRS_* variables. It imports only the standard library and
// nginx-go-crossplane. Values come typed: listen addresses as netip.AddrPort
// (ParseListen: a port alone is the dual-stack wildcard [::]), times as
// time.Duration.
//
// Crossplane does the syntax: lexing, quoting, comments, blocks and line
// numbers. Its directive knowledge is nginx's, not SRS's, so its context and
// argument checks are switched off and `include` is resolved here (relative
// to the working directory as SRS does, then to the including file). The
// mapping from directives to typed fields is this package's own code: one
// table per scope (root, vhost) maps a dotted directive path such as
// "rtc_server.tcp.listen" to a setter, and the same table derives the env
// names (SRS_RTC_SERVER_TCP_LISTEN, SRS_VHOST_RTC_NACK …), so the file and
// the environment accept exactly the same values.
//
// Order of precedence: SRS defaults, then the file, then the environment.
// SRS directives Fanout has no feature for (pid, heartbeat {}, dvr {}, …;
// the list is in srs.go and README.md) are accepted and ignored silently, so
// SRS's own configs load without noise. Any other unknown directive, such as
// a typo, is reported once per path through Options.Warn and ignored; a bad
// value for a known directive is an *Error.
//
// Concurrency: Load, Parse and Default are safe to call concurrently; the
// returned Config is not modified afterwards and may be shared read-only.
package conf
