package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/fanout/fanout/bridge"
	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtmp"
	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath"
	"github.com/fanout/fanout/fastpath/route"
)

// The bridge (RTMP, HTTP-FLV, HLS, AAC⇄Opus) and its wiring to the WebRTC
// side: bridgeLink is the bridge's RTCOutlet for rtmp_to_rtc (a virtual
// publisher in control, fed through fastpath.Engine.Inject) and control's
// Events for rtc_to_rtmp (a fastpath tap read into a bridge.RTCIngest).
// HTTP-FLV and HLS share the HTTP server (8080) with the pages (mux.go).

// errInjectDropped is what a virtual publisher's WriteRTP returns when the
// fastpath refused a packet (its queue was full or the session is gone).
var errInjectDropped = errors.New("fastpath refused the packet")

// bridgeLink adapts between bridge, control and the fastpath.
type bridgeLink struct {
	s   *Server
	b   *bridge.Bridge
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	ingests map[route.SessionID]*ingestLink
	serving sync.WaitGroup // RTMP accept loops
}

// startBridge creates the bridge and the RTMP listeners' limits (before
// /metrics serves them); RTMP listens in serveRTMP.
func (s *Server) startBridge() {
	s.rtmpLimit = newRTMPLimit(s.cfg.Limits.RTMPConnsPerIP, s.cfg.MaxConnections, s.cfg.Limits.ExemptLoopback,
		s.log.With("part", "rtmp"))
	l := s.link
	l.b = bridge.New(bridge.Config{
		Logger:  s.log.With("part", "bridge"),
		Vhost:   s.vhostOf,
		Options: s.bridgeOptions,
		Outlet:  l,
		RTP:     bridge.RTPConfig{VideoPT: bridge.DefaultVideoPT, AudioPT: bridge.DefaultAudioPT},
		Hub:     hub.Config{Want: s.want},
	})
	s.closers = append(s.closers, l.close)
}

// serveRTMP listens for RTMP on each address (SRS's `listen`), every
// listener under one rtmpLimit.
func (s *Server) serveRTMP() error {
	for _, a := range s.addrs.rtmp {
		ln, err := net.Listen("tcp", a.String())
		if err != nil {
			return fmt.Errorf("rtmp listen %v: %w", a, err)
		}
		s.rtmpLns = append(s.rtmpLns, ln)
		s.link.serving.Add(1)
		go func() {
			defer s.link.serving.Done()
			if err := s.link.b.ServeRTMP(s.rtmpLimit.listener(ln)); err != nil && !errors.Is(err, rtmp.ErrServerClosed) {
				s.log.Error("rtmp server stopped", "err", err)
			}
			_ = ln.Close()
		}()
	}
	return nil
}

// close stops the RTMP listeners, every ingest and the bridge.
func (l *bridgeLink) close() {
	l.mu.Lock()
	l.closed = true
	ingests := l.ingests
	l.ingests = nil
	l.mu.Unlock()
	for _, il := range ingests {
		il.stop()
	}
	if l.b != nil {
		l.b.Close()
	}
	l.serving.Wait()
}

// OpenRTC implements bridge.RTCOutlet: an RTMP stream on a vhost with
// rtmp_to_rtc on becomes a virtual publisher that WHEP players can play.
func (l *bridgeLink) OpenRTC(key hub.Key, m bridge.RTCMedia) (bridge.RTPWriter, error) {
	var audio, video *control.VirtualTrack
	if t, ok := m.VideoTrack(); ok {
		video = virtualTrack(t)
	}
	if t, ok := m.AudioTrack(); ok {
		audio = virtualTrack(t)
	}
	vp, err := l.s.ctl.OpenVirtual(key.Vhost, key.App, key.Stream, audio, video)
	if err != nil {
		return nil, err
	}
	w := &virtualWriter{fp: l.s.fp, vp: vp, sid: vp.Session()}
	if c := l.s.clink; c != nil { // an RTMP publisher owns its stream cluster-wide
		info := control.PublisherInfo{Vhost: key.Vhost, App: key.App, Stream: key.Stream}
		c.PublisherReady(info)
		w.gone = func() { c.PublisherGone(info) }
	}
	return w, nil
}

// virtualTrack hands the bridge's description of its RTP output to control.
func virtualTrack(t bridge.Track) *control.VirtualTrack {
	return &control.VirtualTrack{SSRC: t.SSRC, Codec: sdpneg.Codec{Name: t.Codec, PT: t.PT, ClockRate: t.ClockRate,
		Channels: t.Channels, Fmtp: t.Fmtp}}
}

// virtualWriter is the bridge's RTPWriter for one rtmp_to_rtc stream.
type virtualWriter struct {
	fp   *fastpath.Engine
	vp   *control.VirtualPublisher
	sid  route.SessionID
	gone func() // releases the cluster claim, nil without a cluster
}

// WriteRTP hands the packet to the fastpath (copied; never blocks).
func (w *virtualWriter) WriteRTP(_ bridge.Kind, pkt []byte) error {
	if !w.fp.Inject(w.sid, pkt) {
		return errInjectDropped
	}
	return nil
}

// Close ends the virtual publisher; its players wait for the next one.
func (w *virtualWriter) Close() error {
	w.vp.Close()
	if w.gone != nil {
		w.gone()
	}
	return nil
}

// ingestLink is one rtc_to_rtmp bridge: the publisher's tap, the goroutine
// that reads it, and the bridge ingest it feeds.
type ingestLink struct {
	info control.PublisherInfo
	tap  *fastpath.Tap
	in   *bridge.RTCIngest
	done chan struct{}
}

// PublisherReady implements control.Events: a WebRTC publisher on a vhost
// with rtc_to_rtmp on is published to the bridge (RTMP, HTTP-FLV, HLS).
func (l *bridgeLink) PublisherReady(info control.PublisherInfo) {
	if v := l.s.config().Vhost(info.Vhost).RTC; !v.RTCToRTMP {
		return
	}
	key := hub.NewKey(info.Vhost, info.App, info.Stream)
	log := l.log.With("stream", key.String(), "session", info.Session)
	if info.Video != nil && info.Video.Name != sdpneg.CodecH264 {
		log.Warn("rtc_to_rtmp needs H.264 video; stream stays WebRTC-only", "video", info.Video.Name)
		return
	}
	cfg := bridge.IngestConfig{Video: info.Video != nil, Keyframes: keyframer{fp: l.s.fp, sid: info.Session}}
	if info.Video != nil {
		cfg.VideoClock = int(info.Video.ClockRate)
	}
	if a := info.Audio; a != nil && a.Name == sdpneg.CodecOpus {
		cfg.Audio, cfg.AudioClock = true, int(a.ClockRate)
	}
	// The tap first: packets that arrive while the ingest opens wait in it.
	tap := l.s.fp.OpenTap(info.Session, info.Epoch, 0)
	in, err := l.b.IngestRTC(key, cfg)
	if err != nil {
		tap.Close()
		log.Warn("rtc_to_rtmp refused", "err", err)
		return
	}
	il := &ingestLink{info: info, tap: tap, in: in, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		tap.Close()
		in.Close()
		return
	}
	if l.ingests == nil {
		l.ingests = map[route.SessionID]*ingestLink{}
	}
	old := l.ingests[info.Session]
	l.ingests[info.Session] = il
	l.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go il.run()
	log.Info("rtc_to_rtmp started", "video", cfg.Video, "audio", cfg.Audio)
}

// PublisherGone implements control.Events.
func (l *bridgeLink) PublisherGone(info control.PublisherInfo) {
	l.mu.Lock()
	il := l.ingests[info.Session]
	if il == nil || il.info.Epoch != info.Epoch {
		l.mu.Unlock()
		return
	}
	delete(l.ingests, info.Session)
	l.mu.Unlock()
	il.stop()
}

// run feeds the tap's packets and sender reports to the ingest.
func (il *ingestLink) run() {
	defer close(il.done)
	for {
		p, ok := il.tap.Next(nil)
		if !ok {
			return
		}
		kind := bridge.KindAudio
		if p.Kind == route.KindVideo {
			kind = bridge.KindVideo
		}
		if p.SR {
			il.in.OnSenderReport(kind, p.NTP, p.RTPTime, p.At)
			continue
		}
		_ = il.in.WriteRTP(kind, p.Data, p.At) // malformed packets only lose themselves
	}
}

// stop closes the tap, waits for the reader and unpublishes the stream.
func (il *ingestLink) stop() {
	il.tap.Close()
	<-il.done
	il.in.Close()
}

// keyframer is rtc_to_rtmp's KeyframeRequester: a PLI from the
// publisher's owner core.
type keyframer struct {
	fp  *fastpath.Engine
	sid route.SessionID
}

func (k keyframer) RequestKeyframe(hub.Key) { k.fp.RequestKeyframe(k.sid) }
