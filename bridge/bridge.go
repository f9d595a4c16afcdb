package bridge

import (
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/fanout/fanout/bridge/hls"
	"github.com/fanout/fanout/bridge/httplive"
	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtmp"
)

// Kind is a media kind on the WebRTC side.
type Kind uint8

// Media kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
)

// String returns "audio" or "video".
func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return "unknown"
}

// VhostOptions are one vhost's bridge settings (SRS `vhost { rtc { … }
// http_remux { … } hls { … } }`). cmd fills them from conf.
type VhostOptions struct {
	RTMPToRTC   bool          // rtc.rtmp_to_rtc
	KeepBframe  bool          // rtc.keep_bframe
	DropSEI     bool          // !rtc.keep_avc_nalu_sei
	OpusBitrate int           // rtc.opus_bitrate (default 48000)
	AACBitrate  int           // rtc.aac_bitrate (default 48000)
	PLIForRTMP  time.Duration // rtc.pli_for_rtmp (default 6s)
	FLV         bool          // http_remux.enabled
	HLS         bool          // hls.enabled
	HLSFragment time.Duration // hls.hls_fragment (default 10s)
	HLSWindow   time.Duration // hls.hls_window (default 60s)
}

// DefaultVhostOptions are SRS's defaults with FLV and HLS on.
func DefaultVhostOptions() VhostOptions {
	return VhostOptions{OpusBitrate: 48000, AACBitrate: 48000, PLIForRTMP: 6 * time.Second,
		FLV: true, HLS: true, HLSFragment: 10 * time.Second, HLSWindow: 60 * time.Second}
}

// Config configures a Bridge. Every field is optional.
type Config struct {
	Logger *slog.Logger
	// Vhost maps a host name (RTMP tcUrl host, HTTP Host) to a configured
	// vhost name; nil maps everything to hub.DefaultVhost.
	Vhost func(host string) string
	// Options returns a vhost's settings; nil uses DefaultVhostOptions.
	Options func(vhost string) VhostOptions
	// Outlet receives RTMP streams on vhosts with rtmp_to_rtc on; nil
	// turns the automatic bridge off (PlayRTC still works).
	Outlet RTCOutlet
	// RTP sets payload types and SSRCs for rtmp_to_rtc; zero values take
	// the defaults (H.264 PT 102, Opus PT 111, random SSRCs).
	RTP RTPConfig
	// Workers is the transcoding pool size (default GOMAXPROCS) and
	// WorkerQueue each worker's job queue (default 256).
	Workers     int
	WorkerQueue int
	// Hub sizes the hub's queues.
	Hub hub.Config
	// StreamWait bounds how long an HTTP-FLV, HLS or RTMP player of a
	// stream that is not live yet waits for it (and its first key frame)
	// before 404 or NetStream.Play.StreamNotFound, as SRS's players connect
	// right after the publisher (default 30s).
	StreamWait time.Duration
}

// Bridge owns the hub, the RTMP server, HTTP-FLV/HLS and the transcoders.
type Bridge struct {
	cfg  Config
	log  *slog.Logger
	hub  *hub.Hub
	rtmp *rtmp.Server
	hls  *hls.Manager
	http *httplive.Handler
	pool *pool

	mu      sync.Mutex
	closed  bool
	players map[*RTCPlayer]struct{}
	ingests map[*RTCIngest]struct{}
}

// New builds a bridge; nothing listens until ServeRTMP or Handler is used.
func New(cfg Config) *Bridge {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.WorkerQueue <= 0 {
		cfg.WorkerQueue = 256
	}
	cfg.RTP = cfg.RTP.withDefaults()
	if cfg.Hub.Logger == nil {
		cfg.Hub.Logger = log
	}
	b := &Bridge{cfg: cfg, log: log, hub: hub.New(cfg.Hub), pool: newPool(cfg.Workers, cfg.WorkerQueue, log),
		players: map[*RTCPlayer]struct{}{}, ingests: map[*RTCIngest]struct{}{}}
	b.rtmp = rtmp.NewServer(rtmp.Config{Hub: b.hub, Logger: log, Vhost: cfg.Vhost, Wait: cfg.StreamWait})
	b.hls = hls.New(hls.Config{Hub: b.hub, Logger: log, Vhost: func(v string) hls.Params {
		o := b.options(v)
		return hls.Params{Enabled: o.HLS, Fragment: o.HLSFragment, Window: o.HLSWindow}
	}})
	b.http = httplive.New(httplive.Config{Hub: b.hub, HLS: b.hls, Logger: log, Vhost: cfg.Vhost,
		FLV: func(v string) bool { return b.options(v).FLV }, Wait: cfg.StreamWait})
	b.hub.OnPublish(b.onPublish)
	return b
}

func (b *Bridge) options(vhost string) VhostOptions {
	o := DefaultVhostOptions()
	if b.cfg.Options != nil {
		o = b.cfg.Options(vhost)
	}
	if o.OpusBitrate <= 0 {
		o.OpusBitrate = 48000
	}
	if o.AACBitrate <= 0 {
		o.AACBitrate = 48000
	}
	if o.PLIForRTMP <= 0 {
		o.PLIForRTMP = 6 * time.Second
	}
	return o
}

// Hub returns the stream registry.
func (b *Bridge) Hub() *hub.Hub { return b.hub }

// Players is how many RTMP and HTTP-FLV players (hub readers other than
// the HLS muxer) key has; HLS players hold no reader (they poll).
func (b *Bridge) Players(key hub.Key) int {
	return max(0, b.hub.Readers(key)-b.hls.Readers(key))
}

// ServeRTMP accepts RTMP publishers and players on ln until Close. It
// returns rtmp.ErrServerClosed after Close.
func (b *Bridge) ServeRTMP(ln net.Listener) error { return b.rtmp.Serve(ln) }

// Handler returns the HTTP-FLV and HLS handler for the HTTP server
// (`/{app}/{stream}.flv`, `/{app}/{stream}.m3u8`).
func (b *Bridge) Handler() http.Handler { return b.http }

// Close stops the RTMP server, every player and ingest, HLS, the hub and
// the worker pool, and waits for all their goroutines.
func (b *Bridge) Close() {
	b.mu.Lock()
	b.closed = true
	players, ingests := b.players, b.ingests
	b.players, b.ingests = map[*RTCPlayer]struct{}{}, map[*RTCIngest]struct{}{}
	b.mu.Unlock()
	_ = b.rtmp.Close()
	for p := range players {
		p.Close()
	}
	for in := range ingests {
		in.Close()
	}
	b.hls.Close()
	b.hub.Close()
	b.pool.close()
}
