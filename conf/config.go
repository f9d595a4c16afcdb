package conf

import (
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// DefaultVhost is the name of the vhost used when no other vhost matches.
const DefaultVhost = "__defaultVhost__"

// DefaultFile is the name Default reports in errors and warnings for the
// embedded configuration (Config.File stays "").
const DefaultFile = "embedded:default.conf"

//go:embed default.conf
var defaultConf []byte

// Config is a loaded configuration: SRS defaults, then the file, then SRS_*
// environment overrides. It is a plain value; nothing in it changes after
// Load returns, so it may be shared read-only between goroutines.
type Config struct {
	File string // path loaded, "" for the embedded default or env-only
	// Listen is RTMP's `listen`, default [::]:1935. Every listen address in
	// a Config is read by ParseListen: a port alone is the dual-stack
	// wildcard [::] (IPv4 and IPv6), 0.0.0.0:port is IPv4 only.
	Listen     []netip.AddrPort
	Daemon     bool   // `daemon`, default on (SRS); the shipped files say off
	LogTank    string // `srs_log_tank`: console|file, default console
	LogLevel   string // verbose|info|trace|warn|error, default trace
	LogFile    string // `srs_log_file`, default ./objs/srs.log
	HTTPAPI    HTTPAPI
	HTTPServer HTTPServer
	RTCServer  RTCServer
	Fastpath   Fastpath
	Cluster    Cluster
	Vhosts     map[string]*Vhost // always contains DefaultVhost

	// MaxConnections is SRS's `max_connections` (env SRS_MAX_CONNECTIONS),
	// default 1000 (the embedded default.conf says 10000): the most live
	// WebRTC sessions; an offer beyond it is answered 503 with Retry-After.
	MaxConnections int
	// Limits is Fanout's `limits { }` block (limits.go).
	Limits Limits

	levelV2 bool // srs_log_level_v2 was given; it wins over srs_log_level
}

// HTTPS is the `https { }` block of http_api and http_server.
type HTTPS struct {
	Enabled bool           // default off
	Listen  netip.AddrPort // [::]:1990 for the API, [::]:8088 for the server
	Key     string         // default ./conf/server.key
	Cert    string         // default ./conf/server.crt
}

// HTTPAuth is `http_api.auth`: HTTP Basic auth for the API.
type HTTPAuth struct {
	Enabled            bool
	Username, Password string
	BearerToken        string // Fanout: required as `Authorization: Bearer` on WHIP/WHEP when set
}

// HTTPAPI is the `http_api { }` block (WHIP/WHEP and the JSON API).
type HTTPAPI struct {
	Enabled     bool           // default off (the embedded default turns it on)
	Listen      netip.AddrPort // default [::]:1985
	Crossdomain bool           // default on
	Auth        HTTPAuth
	HTTPS       HTTPS // default listen [::]:1990
}

// HTTPServer is the `http_server { }` block (HTTP-FLV, HLS, static pages).
type HTTPServer struct {
	Enabled bool           // default off (the embedded default turns it on)
	Listen  netip.AddrPort // default [::]:8080
	Dir     string         // default "./objs/nginx/html"
	HTTPS   HTTPS          // default listen [::]:8088
}

// RTCTCP is `rtc_server.tcp`: WebRTC over TCP (RFC 4571 framing).
type RTCTCP struct {
	Enabled bool           // default off
	Listen  netip.AddrPort // default [::]:8000
}

// RTCServer is the `rtc_server { }` block.
type RTCServer struct {
	Enabled bool             // default off when a file does not say; the embedded default says on
	Listen  []netip.AddrPort // UDP, default [[::]:8000]
	TCP     RTCTCP
	// Protocol of the candidates: udp|tcp|all, default udp.
	Protocol string
	// Candidates as configured, $VAR resolved from the environment (unset
	// variables dropped), "0.0.0.0" normalised to "*"; never empty, default ["*"].
	Candidates             []string
	UseAutoDetectNetworkIP bool   // default on
	IPFamily               string // ipv4|ipv6|all, default ipv4
	APIAsCandidates        bool   // default on
	ResolveAPIDomain       bool   // default on
	KeepAPIDomain          bool   // default off
	ECDSA                  bool   // default on
	Encrypt                bool   // default on
	Reuseport              int    // default 1
}

// Fastpath is Fanout's `fastpath { }` block (no SRS equivalent).
type Fastpath struct {
	Cores int    // loops to run; 0 = one per CPU in the affinity mask (`cores auto;`)
	Batch int    // recvmmsg/sendmmsg batch, default 64, 1–1024
	GSO   bool   // UDP GSO when the kernel allows it, default on
	BPF   string // auto|on|off, default auto
	// FrameWait is how long a core keeps reading for the rest of a video
	// frame before fanning it out (one GSO send per player per frame):
	// `frame_wait` in µs, default 50µs. `frame_wait 0;` (off) is stored as
	// a negative duration, which is what fastpath.Config reads as off.
	FrameWait time.Duration
	// ReplayMaxAge and ReplayMaxBytes bound the keyframe (GOP) replay to a
	// joining player: `keyframe_replay_age` in seconds (default 2) and
	// `keyframe_replay_bytes` (default 1048576); an older or larger GOP is
	// not replayed, the player starts from the fresh keyframe its join asks
	// for. 0 (off) is stored as a negative value, which fastpath.Config
	// reads as off.
	ReplayMaxAge   time.Duration
	ReplayMaxBytes int
	// XDP lists the interfaces that carry the RTC port, where the XDP
	// shield drops UDP to it from addresses that are no session (`xdp
	// eth0 eth1;`, SRS_FASTPATH_XDP); nil is `xdp off;`, the default.
	XDP []string
	// XDPSTUNRate and XDPSTUNBurst limit the STUN Binding Requests the
	// shield lets through from one source IP that is no session:
	// `xdp_stun_rate` per second (default 20), `xdp_stun_burst` at once
	// (default 40).
	XDPSTUNRate  int
	XDPSTUNBurst int
	// XDPMode is `xdp_mode shield|afxdp` (SRS_FASTPATH_XDP_MODE): the
	// shield alone (default), or also AF_XDP kernel bypass for sessions'
	// media, which needs exactly one xdp interface.
	XDPMode string
}

// Cluster is Fanout's `cluster { }` block (no SRS equivalent): several
// nodes sharing a stream registry in Redis (control/cluster). Off by
// default; a single node needs none of it.
type Cluster struct {
	Enabled bool // default off
	// Redis is the registry's URL, redis://[user:pass@]host:port/db or
	// rediss:// for TLS (go-redis ParseURL), default redis://127.0.0.1:6379/0.
	Redis string
	// NodeID names this node in the registry; "" = the host name.
	NodeID string
	// No relay_listen: edges pull through the owner's WHEP endpoint on
	// the HTTP API, placement included (control/relay's package doc says
	// why).
	// Advertise is the base URL other nodes and redirected clients use to
	// reach this node's HTTP API (WHIP/WHEP): http(s)://host:port, or
	// host:port for http. "" = http:// and the bound API address.
	Advertise string
	// Redirect: WHIP to a stream another live node owns answers 307 to
	// the owner (else 409), and WHEP to a full node 307 to the least
	// loaded other node. Default off.
	Redirect bool
	// MaxPlayers is this node's capacity in WebRTC players: at or over it
	// the node is full (redirect). 0 = unlimited (default).
	MaxPlayers int
	// TTL is the lifetime of this node's registry keys (seconds, 1–300):
	// a dead owner's streams can be republished elsewhere after at most
	// this long; it heartbeats every TTL/3. 0 = cluster.DefaultTTL (10 s).
	TTL time.Duration
}

// HTTPRemux is `vhost.http_remux`: HTTP-FLV.
type HTTPRemux struct {
	Enabled bool   // default off
	Mount   string // default "[vhost]/[app]/[stream].flv"
}

// HLS is `vhost.hls`.
type HLS struct {
	Enabled  bool
	Fragment time.Duration // `hls_fragment` in seconds, default 10s
	Window   time.Duration // `hls_window` in seconds, default 60s
	Path     string        // `hls_path`, default ./objs/nginx/html
}

// Vhost is one `vhost name { }` block. Each vhost starts from the SRS
// defaults; it does not inherit from __defaultVhost__.
type Vhost struct {
	Name      string
	RTC       VhostRTC
	HTTPHooks HTTPHooks
	HTTPRemux HTTPRemux
	HLS       HLS
}

// HTTPHooks is `vhost.http_hooks`: SRS's HTTP callbacks. on_publish and
// on_play are called before the answer and can refuse the session.
type HTTPHooks struct {
	Enabled                                bool
	OnPublish, OnUnpublish, OnPlay, OnStop []string
}

// VhostRTC is `vhost.rtc`.
type VhostRTC struct {
	Enabled         bool          // default off
	NACK            bool          // default on
	NACKNoCopy      bool          // default on
	TWCC            bool          // default on
	STUNTimeout     time.Duration // default 30s
	STUNStrictCheck bool          // default off
	DTLSRole        string        // passive|active as SRS; default auto (Fanout): active unless the offer is a browser's (sdpneg.SetupFor says why)
	DTLSVersion     string        // auto|dtls1.0|dtls1.2, default auto
	DropForPT       int           // 0 = none, else drop incoming RTP with this PT
	RTMPToRTC       bool          // default off (legacy `aac transcode;` = on)
	RTCToRTMP       bool          // default off
	KeepBframe      bool          // default off (legacy `bframe keep;` = on)
	KeepAVCNaluSEI  bool          // default on
	PLIForRTMP      time.Duration // default 6s; outside 0.5–30s → 6s with a warning
	OpusBitrate     int           // default 48000; outside 8000–320000 → default with a warning
	AACBitrate      int           // default 48000; outside 8000–320000 → default with a warning
	KeyframeCache   bool          // Fanout extension: cache the last keyframe, default on
}

// Options control where values come from and where warnings go.
type Options struct {
	// Env in os.Environ() form ("K=V"); nil means os.Environ(). It feeds both
	// $VAR values in the file and SRS_* overrides.
	Env []string
	// Warn receives one line per ignored directive (unknown ones once per
	// path, duplicates, values replaced by their default). nil discards.
	Warn func(msg string)
	// ReadFile reads the config and included files; nil reads regular files
	// from disk (at most 4 MiB). Tests and the fuzzer stub it.
	ReadFile func(name string) ([]byte, error)
}

// Vhost returns the vhost named name, or __defaultVhost__; never nil.
func (c *Config) Vhost(name string) *Vhost {
	if v, ok := c.Vhosts[name]; ok {
		return v
	}
	if v, ok := c.Vhosts[DefaultVhost]; ok {
		return v
	}
	return newVhost(DefaultVhost)
}

// Load reads the config file at path, then applies SRS_* overrides.
// path "" means $SRS_CONFIG_FILE, or the embedded default when that is unset.
// With SRS_ENV_ONLY=on the file is not read at all: SRS defaults plus env.
func Load(path string, opts Options) (*Config, error) {
	env := envMap(opts.Env)
	if envOn(env, "SRS_ENV_ONLY") {
		return build("", "", nil, env, opts)
	}
	if path == "" {
		path = env["SRS_CONFIG_FILE"]
	}
	if path == "" {
		return Default(opts)
	}
	data, err := opts.read(path)
	if err != nil {
		return nil, &Error{File: path, Err: fmt.Errorf("%w: %w", ErrRead, err)}
	}
	return build(path, path, data, env, opts)
}

// Parse maps data, read from the file called name, into a Config and applies
// SRS_* overrides. Includes are resolved relative to the working directory
// (as SRS does), then relative to name's directory. SRS_ENV_ONLY is not
// consulted: the caller handed the data over explicitly.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	if data == nil {
		data = []byte{}
	}
	return build(name, name, data, envMap(opts.Env), opts)
}

// Default returns the embedded default configuration (conf/default.conf:
// RTC server on with candidate *, http_api on 1985, http_server on 8080,
// __defaultVhost__ with rtc enabled) plus SRS_* overrides. With
// SRS_ENV_ONLY=on it returns SRS defaults plus env, as Load does.
func Default(opts Options) (*Config, error) {
	env := envMap(opts.Env)
	if envOn(env, "SRS_ENV_ONLY") {
		return build("", "", nil, env, opts)
	}
	return build("", DefaultFile, defaultConf, env, opts)
}

// build is the one pipeline: defaults, file (if any), env overrides.
func build(file, name string, data []byte, env map[string]string, opts Options) (*Config, error) {
	c := newConfig()
	c.File = file
	m := newMapper(c, env, opts)
	if data == nil {
		envOnlyDefaults(env)
	} else {
		dirs, err := m.syntax(name, data)
		if err != nil {
			return nil, err
		}
		if err := m.root(dirs); err != nil {
			return nil, err
		}
	}
	if err := m.applyEnv(); err != nil {
		return nil, err
	}
	return c, nil
}

// envOnlyDefaults mirrors SRS: with -e / SRS_ENV_ONLY the daemon is off and
// logs go to the console unless the environment says otherwise.
func envOnlyDefaults(env map[string]string) {
	if env["SRS_DAEMON"] == "" {
		env["SRS_DAEMON"] = "off"
	}
	if env["SRS_SRS_LOG_TANK"] == "" && env["SRS_LOG_TANK"] == "" {
		env["SRS_SRS_LOG_TANK"] = "console"
	}
}

func newConfig() *Config {
	return &Config{
		Listen:   []netip.AddrPort{AnyPort(1935)},
		Daemon:   true,
		LogTank:  "console",
		LogLevel: "trace",
		LogFile:  "./objs/srs.log",
		HTTPAPI: HTTPAPI{
			Listen: AnyPort(1985), Crossdomain: true,
			HTTPS: HTTPS{Listen: AnyPort(1990), Key: "./conf/server.key", Cert: "./conf/server.crt"},
		},
		HTTPServer: HTTPServer{
			Listen: AnyPort(8080), Dir: "./objs/nginx/html",
			HTTPS: HTTPS{Listen: AnyPort(8088), Key: "./conf/server.key", Cert: "./conf/server.crt"},
		},
		RTCServer: RTCServer{
			Listen: []netip.AddrPort{AnyPort(8000)}, TCP: RTCTCP{Listen: AnyPort(8000)},
			Protocol: "udp", Candidates: []string{"*"},
			UseAutoDetectNetworkIP: true, IPFamily: "ipv4",
			APIAsCandidates: true, ResolveAPIDomain: true,
			ECDSA: true, Encrypt: true, Reuseport: 1,
		},
		Fastpath: Fastpath{Cores: 0, Batch: 64, GSO: true, BPF: "auto", FrameWait: 50 * time.Microsecond,
			XDPSTUNRate: 20, XDPSTUNBurst: 40, XDPMode: "shield",
			ReplayMaxAge: 2 * time.Second, ReplayMaxBytes: 1 << 20},
		Cluster: Cluster{Redis: "redis://127.0.0.1:6379/0"},
		Vhosts:  map[string]*Vhost{DefaultVhost: newVhost(DefaultVhost)},

		MaxConnections: 1000,
		Limits:         defaultLimits(),
	}
}

func newVhost(name string) *Vhost {
	return &Vhost{
		Name: name,
		RTC: VhostRTC{
			NACK: true, NACKNoCopy: true, TWCC: true,
			STUNTimeout: 30 * time.Second, DTLSRole: "auto", DTLSVersion: "auto",
			KeepAVCNaluSEI: true, PLIForRTMP: 6 * time.Second,
			OpusBitrate: 48000, AACBitrate: 48000, KeyframeCache: true,
		},
		HTTPRemux: HTTPRemux{Mount: "[vhost]/[app]/[stream].flv"},
		HLS:       HLS{Fragment: 10 * time.Second, Window: 60 * time.Second, Path: "./objs/nginx/html"},
	}
}

// maxFileSize bounds what the default reader accepts, so that a mistaken
// include of a device or a huge file fails instead of hanging.
const maxFileSize = 4 << 20

func (o Options) read(name string) ([]byte, error) {
	if o.ReadFile != nil {
		return o.ReadFile(name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	if fi.Size() > maxFileSize {
		return nil, errTooBig
	}
	return os.ReadFile(name)
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}
