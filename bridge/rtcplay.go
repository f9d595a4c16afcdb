package bridge

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtph264"
	"github.com/fanout/fanout/bridge/transcode"
)

// maxAudioErrors is how many consecutive transcode errors turn a player's
// audio off.
const maxAudioErrors = 50

var noTranscodeOnce sync.Once

// RTCPlayer is one rtmp_to_rtc bridge: it reads a hub stream and writes
// RTP for WebRTC players. Video is repacketized on the player's goroutine;
// audio is transcoded on a pool worker.
type RTCPlayer struct {
	b    *Bridge
	key  hub.Key
	rd   *hub.Reader
	w    RTPWriter
	log  *slog.Logger
	rtp  RTPConfig
	auto bool

	pkt  *rtph264.Packetizer
	pkts [][]byte

	tc         *transcode.AACToOpus
	opus       bool // the hub stream already carries Opus
	slot       int
	audioSeq   uint16
	audioOff   atomic.Bool
	audioErrs  int // owned by the pool worker
	sentVideo  atomic.Uint64
	sentAudio  atomic.Uint64
	audioDrops atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
}

// PlayRTC starts rtmp_to_rtc for a live hub stream, writing RTP to w until
// the stream ends or Close. The vhost's options (keep_bframe, opus_bitrate,
// keep_avc_nalu_sei) apply.
func (b *Bridge) PlayRTC(key hub.Key, w RTPWriter) (*RTCPlayer, error) {
	return b.playRTC(key, w, false)
}

func (b *Bridge) playRTC(key hub.Key, w RTPWriter, auto bool) (*RTCPlayer, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	rd, err := b.hub.Subscribe(key)
	if err != nil {
		return nil, err
	}
	o := b.options(key.Vhost)
	p := &RTCPlayer{b: b, key: key, rd: rd, w: w, rtp: b.cfg.RTP, auto: auto, slot: b.pool.slot(),
		log: b.log.With("stream", key.String(), "bridge", "rtmp_to_rtc"), done: make(chan struct{}),
		audioSeq: uint16(random32())}
	p.pkt = rtph264.NewPacketizer(p.rtp.VideoPT, p.rtp.VideoSSRC, uint16(random32()))
	p.pkt.KeepBframe, p.pkt.DropSEI = o.KeepBframe, o.DropSEI
	p.openAudio(rd.Tracks(), o.OpusBitrate)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if p.tc != nil { // no job was queued yet; the pool may be gone
			p.tc.Close()
			p.tc = nil
		}
		p.release()
		return nil, ErrClosed
	}
	b.players[p] = struct{}{}
	b.mu.Unlock()
	go p.run()
	return p, nil
}

func (p *RTCPlayer) openAudio(tr hub.Tracks, bitrate int) {
	switch tr.Audio {
	case hub.CodecOpus:
		p.opus = true
	case hub.CodecAAC:
		if !transcode.Available() {
			noTranscodeOnce.Do(func() {
				p.log.Warn("audio transcoding unavailable in this build (notranscode or no cgo): rtmp_to_rtc sends video only")
			})
			p.audioOff.Store(true)
			return
		}
		tc, err := transcode.NewAACToOpus(tr.AudioConfig, bitrate)
		if err != nil {
			p.log.Warn("aac to opus unavailable, sending video only", "err", err)
			p.audioOff.Store(true)
			return
		}
		p.tc = tc
	default:
		p.audioOff.Store(true)
	}
}

// Done is closed when the player has stopped (stream ended or Close).
func (p *RTCPlayer) Done() <-chan struct{} { return p.done }

// Close stops the player and waits for it.
func (p *RTCPlayer) Close() {
	p.rd.Close()
	<-p.done
}

func (p *RTCPlayer) run() {
	defer p.release()
	for u := range p.rd.Units() {
		if u.IsVideo() {
			p.video(u)
		} else if !p.audioOff.Load() {
			p.audio(u)
		}
	}
}

// release frees everything once: the transcoder on its worker (after the
// stream's queued jobs, so no WriteRTP happens after Done), the writer for
// automatic players, the registry.
func (p *RTCPlayer) release() {
	p.closeOnce.Do(func() {
		p.rd.Close()
		if p.tc != nil { // after the stream's queued jobs: no WriteRTP follows
			tc, freed := p.tc, make(chan struct{})
			p.b.pool.submitWait(p.slot, func() { tc.Close(); close(freed) })
			<-freed
		}
		if c, ok := p.w.(io.Closer); ok && p.auto {
			_ = c.Close()
		}
		p.b.mu.Lock()
		delete(p.b.players, p)
		p.b.mu.Unlock()
		p.log.Info("rtmp_to_rtc ended", "video_packets", p.sentVideo.Load(), "audio_packets", p.sentAudio.Load(),
			"audio_dropped", p.audioDrops.Load(), "reader_dropped", p.rd.Dropped())
		close(p.done)
	})
}

func (p *RTCPlayer) video(u *hub.Unit) {
	ts := uint32(int64(u.PTS) * VideoClockRate / int64(time.Second))
	p.pkts = p.pkt.Packetize(p.pkts[:0], u.NALUs, ts)
	for _, pkt := range p.pkts {
		if err := p.w.WriteRTP(KindVideo, pkt); err != nil {
			p.log.Debug("rtp write", "kind", "video", "err", err)
		}
	}
	p.sentVideo.Add(uint64(len(p.pkts)))
	clear(p.pkts)
}

func (p *RTCPlayer) audio(u *hub.Unit) {
	if p.opus {
		ts := uint32(int64(u.PTS) * AudioClockRate / int64(time.Second))
		p.writeOpus(u.Frame, ts)
		return
	}
	tc := p.tc
	if !p.b.pool.submit(p.slot, func() { p.transcode(tc, u) }, p.audioFailed) {
		p.audioDrops.Add(1)
	}
}

// transcode runs on the player's pool worker.
func (p *RTCPlayer) transcode(tc *transcode.AACToOpus, u *hub.Unit) {
	if p.audioOff.Load() {
		return
	}
	out, err := tc.Transcode(u.Frame, u.PTS, nil)
	if err != nil {
		p.audioErrs++
		if p.audioErrs >= maxAudioErrors {
			p.audioFailed(err)
		}
		return
	}
	p.audioErrs = 0
	for _, o := range out {
		p.writeOpus(o.Data, uint32(o.PTS))
	}
}

func (p *RTCPlayer) audioFailed(err error) {
	if !p.audioOff.Swap(true) {
		p.log.Error("aac to opus failed; this stream's audio is off", "err", err)
	}
}

// writeOpus sends one Opus frame as one RTP packet, marker set (as SRS).
func (p *RTCPlayer) writeOpus(frame []byte, ts uint32) {
	b := make([]byte, 0, 12+len(frame))
	b = appendRTPHeader(b, p.rtp.AudioPT, true, p.audioSeq, ts, p.rtp.AudioSSRC)
	p.audioSeq++
	if err := p.w.WriteRTP(KindAudio, append(b, frame...)); err != nil {
		p.log.Debug("rtp write", "kind", "audio", "err", err)
	}
	p.sentAudio.Add(1)
}

// onPublish starts the automatic rtmp_to_rtc bridge for RTMP streams on
// vhosts that have it on.
func (b *Bridge) onPublish(key hub.Key, tr hub.Tracks) {
	if b.cfg.Outlet == nil || tr.Origin == hub.OriginRTC || !b.options(key.Vhost).RTMPToRTC {
		return
	}
	if tr.Video != hub.CodecH264 {
		b.log.Warn("rtmp_to_rtc needs H.264 video", "stream", key.String())
		return
	}
	media := RTCMedia{Video: true, Audio: tr.Audio == hub.CodecOpus ||
		(tr.Audio == hub.CodecAAC && transcode.Available()), RTP: b.cfg.RTP}
	w, err := b.cfg.Outlet.OpenRTC(key, media)
	if err != nil {
		b.log.Warn("rtmp_to_rtc outlet refused", "stream", key.String(), "err", err)
		return
	}
	if _, err := b.playRTC(key, w, true); err != nil {
		b.log.Warn("rtmp_to_rtc failed", "stream", key.String(), "err", err)
		if c, ok := w.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
