package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// PublisherConfig describes one WHIP publisher.
type PublisherConfig struct {
	WHIP     string        // endpoint URL
	Token    string        // Bearer token, optional
	Bitrate  int           // total bits per second (video + audio)
	PktSize  int           // RTP payload bytes of a full video packet
	FPS      int           // video frames per second
	GOP      time.Duration // keyframe interval
	H264File string        // Annex-B file; "" = synthetic source
	OggFile  string        // Ogg/Opus file used with H264File
	Timeout  time.Duration
}

// Publisher is a pion/webrtc WHIP client feeding H.264 + Opus.
type Publisher struct {
	cfg      PublisherConfig
	pc       *webrtc.PeerConnection
	resource string
	hc       *http.Client
	kfReq    atomic.Bool
	sent     atomic.Uint64 // RTP packets written
	paused   atomic.Bool
	edge     chan func() // AtFrameEdge requests, run by the synthetic source
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// StartPublisher connects a WHIP publisher and starts its media source.
func StartPublisher(ctx context.Context, cfg PublisherConfig) (*Publisher, error) {
	if cfg.FPS <= 0 {
		cfg.FPS = 30
	}
	if cfg.PktSize <= 0 {
		cfg.PktSize = 1200
	}
	if cfg.GOP <= 0 {
		cfg.GOP = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	api, err := publisherAPI(cfg.WHIP)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("publisher pc: %w", err)
	}
	p := &Publisher{cfg: cfg, pc: pc, hc: &http.Client{Timeout: cfg.Timeout}, edge: make(chan func(), 1)}
	video, audio, err := p.addTracks()
	if err == nil {
		err = p.negotiate(ctx)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if cfg.H264File != "" {
			p.runFiles(sctx, video, audio)
			return
		}
		p.runSynthetic(sctx, video, audio)
	}()
	return p, nil
}

// publisherAPI builds a pion API that gathers loopback candidates when the
// WHIP host is a loopback address.
func publisherAPI(whip string) (*webrtc.API, error) {
	u, err := url.Parse(whip)
	if err != nil {
		return nil, fmt.Errorf("%w: whip url: %w", ErrConfig, err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("publisher codecs: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)), nil
}

var (
	h264Cap = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	opusCap = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
)

// addTracks adds sendonly video and audio tracks; with files they are
// sample tracks, else RTP tracks.
func (p *Publisher) addTracks() (webrtc.TrackLocal, webrtc.TrackLocal, error) {
	var video, audio webrtc.TrackLocal
	var err error
	if p.cfg.H264File != "" {
		video, err = webrtc.NewTrackLocalStaticSample(h264Cap, "video", "fanout-bench")
		if err == nil {
			audio, err = webrtc.NewTrackLocalStaticSample(opusCap, "audio", "fanout-bench")
		}
	} else {
		video, err = webrtc.NewTrackLocalStaticRTP(h264Cap, "video", "fanout-bench")
		if err == nil {
			audio, err = webrtc.NewTrackLocalStaticRTP(opusCap, "audio", "fanout-bench")
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("publisher track: %w", err)
	}
	for _, t := range []webrtc.TrackLocal{audio, video} {
		sender, err := p.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, nil, fmt.Errorf("publisher transceiver: %w", err)
		}
		p.wg.Add(1)
		go p.readRTCP(sender.Sender())
	}
	return video, audio, nil
}

// readRTCP turns PLI/FIR from the server into keyframe requests.
func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	defer p.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.kfReq.Store(true)
			}
		}
	}
}

// negotiate does the WHIP exchange (RFC 9725 §4.2) without trickle and
// waits until the PeerConnection is connected.
func (p *Publisher) negotiate(ctx context.Context) error {
	connected := make(chan struct{})
	var once sync.Once
	p.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("publisher offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("publisher offer: %w", err)
	}
	<-gathered
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	answer, loc, err := postSDP(ctx, p.hc, p.cfg.WHIP, p.cfg.Token, p.pc.LocalDescription().SDP)
	if err != nil {
		return fmt.Errorf("whip: %w", err)
	}
	p.resource = loc
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("whip answer: %w", err)
	}
	select {
	case <-connected:
		return nil
	case <-ctx.Done():
		return ErrPublisherState
	}
}

// Pause stops (true) or resumes (false) a synthetic source without a
// sequence gap; the floor loop runs while the server is idle.
func (p *Publisher) Pause(on bool) { p.paused.Store(on) }

// AtFrameEdge runs fn on the synthetic source's goroutine just before it
// writes its next video frame (and that tick's audio), so counters read by fn
// see no packet of the stream half fanned out: a measuring window whose two
// edges are frame edges counts whole frames at both ends. Without a frame
// within timeout (paused, stopped, file source) fn runs on the caller.
// The source resumes where it stopped: the time fn takes is skipped, not
// caught up with a burst. One caller at a time.
func (p *Publisher) AtFrameEdge(fn func(), timeout time.Duration) {
	if p.cfg.H264File != "" {
		fn()
		return
	}
	done := make(chan struct{})
	p.edge <- func() { fn(); close(done) }
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	select {
	case <-p.edge: // taken back: the source did not reach a frame
		fn()
	case <-done:
	}
}

// frameEdge runs a pending AtFrameEdge request and returns how long it held
// the stream.
func (p *Publisher) frameEdge() time.Duration {
	select {
	case fn := <-p.edge:
		t := time.Now()
		fn()
		return time.Since(t)
	default:
		return 0
	}
}

// Sent returns the number of RTP packets written so far.
func (p *Publisher) Sent() uint64 { return p.sent.Load() }

// Close stops the source, ends the WHIP session and closes the PeerConnection.
func (p *Publisher) Close() {
	if p.cancel != nil {
		p.cancel()
	}
	deleteResource(p.hc, p.resource, p.cfg.Token)
	_ = p.pc.Close()
	p.wg.Wait()
}
