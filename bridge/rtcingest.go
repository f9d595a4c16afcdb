package bridge

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtph264"
	"github.com/fanout/fanout/bridge/transcode"
)

// keyframeRetry is the shortest interval between two loss-triggered key
// frame requests.
const keyframeRetry = time.Second

// IngestConfig describes a WebRTC publisher's negotiated tracks.
type IngestConfig struct {
	Video      bool // H.264 (packetization-mode 1)
	Audio      bool // Opus
	VideoClock int  // SDP clock rate, default 90000
	AudioClock int  // SDP clock rate, default 48000
	// Keyframes is asked for a key frame every pli_for_rtmp, at start and
	// after loss. Nil disables the requests.
	Keyframes KeyframeRequester
}

// RTCIngest is one rtc_to_rtmp bridge: plaintext RTP from a WebRTC
// publisher becomes an RTMP-equivalent hub stream (H.264 + AAC).
type RTCIngest struct {
	b    *Bridge
	key  hub.Key
	cfg  IngestConfig
	pub  *hub.Publisher
	log  *slog.Logger
	tc   *transcode.OpusToAAC
	slot int

	mu       sync.Mutex
	closed   bool
	epoch    time.Time
	started  bool
	video    rtpClock
	audio    rtpClock
	ntpOff   time.Duration
	haveNTP  bool
	depack   *rtph264.Depacketizer
	lastPLI  time.Time
	hdr      rtp.Header
	audioErr atomic.Uint64
	drops    atomic.Uint64
	keySeen  atomic.Bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// IngestRTC starts rtc_to_rtmp for key. It fails with hub.ErrStreamBusy if
// the stream is already live (for instance from RTMP).
func (b *Bridge) IngestRTC(key hub.Key, c IngestConfig) (*RTCIngest, error) {
	if c.VideoClock <= 0 {
		c.VideoClock = VideoClockRate
	}
	if c.AudioClock <= 0 {
		c.AudioClock = AudioClockRate
	}
	o := b.options(key.Vhost)
	in := &RTCIngest{b: b, key: key, cfg: c, slot: b.pool.slot(), depack: rtph264.NewDepacketizer(),
		log: b.log.With("stream", key.String(), "bridge", "rtc_to_rtmp"), stop: make(chan struct{})}
	in.video.rate, in.audio.rate = int64(c.VideoClock), int64(c.AudioClock)
	tr := hub.Tracks{Origin: hub.OriginRTC}
	if c.Video {
		tr.Video = hub.CodecH264
	}
	if c.Audio {
		tc, err := transcode.NewOpusToAAC(o.AACBitrate)
		if err != nil {
			in.log.Warn("opus to aac unavailable, publishing video only", "err", err)
		} else {
			in.tc = tc
			tr.Audio, tr.AudioConfig, tr.SampleRate, tr.Channels = hub.CodecAAC, tc.Config(), transcode.SampleRate, 2
		}
	}
	if err := in.register(tr); err != nil {
		return nil, err
	}
	if c.Keyframes != nil && c.Video {
		in.wg.Add(1)
		go in.requestKeyframes(o.PLIForRTMP)
	}
	return in, nil
}

func (in *RTCIngest) register(tr hub.Tracks) error {
	b := in.b
	pub, err := b.hub.Publish(in.key, tr) // runs publish hooks: not under b.mu
	if err == nil {
		b.mu.Lock()
		if !b.closed {
			in.pub = pub
			b.ingests[in] = struct{}{}
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		pub.Close()
		err = ErrClosed
	}
	if in.tc != nil {
		in.tc.Close()
	}
	return err
}

// requestKeyframes asks for a key frame every pli_for_rtmp so RTMP, FLV and
// HLS players can join (SRS rtc.pli_for_rtmp).
func (in *RTCIngest) requestKeyframes(every time.Duration) {
	defer in.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-in.stop:
			return
		case <-t.C:
			in.cfg.Keyframes.RequestKeyframe(in.key)
		}
	}
}

// WriteRTP takes one plaintext RTP packet of the given kind that arrived
// at arrival. It does not keep pkt. Safe for concurrent use; it never
// blocks on transcoding (audio runs on the pool, and a full queue drops).
func (in *RTCIngest) WriteRTP(kind Kind, pkt []byte, arrival time.Time) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrClosed
	}
	n, err := in.hdr.Unmarshal(pkt)
	if err != nil {
		return errors.Join(ErrBadRTP, err)
	}
	payload := pkt[n:]
	if in.hdr.Padding && len(payload) > 0 {
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			return ErrBadRTP
		}
		payload = payload[:len(payload)-pad]
	}
	if !in.started {
		in.started, in.epoch = true, arrival
	}
	rel := arrival.Sub(in.epoch)
	switch kind {
	case KindVideo:
		return in.writeVideo(payload, rel, arrival)
	case KindAudio:
		return in.writeAudio(payload, rel)
	}
	return ErrUnknownKind
}

func (in *RTCIngest) writeVideo(payload []byte, rel time.Duration, arrival time.Time) error {
	if !in.cfg.Video {
		return nil
	}
	h := &in.hdr
	in.video.observe(h.Timestamp, rel)
	f, err := in.depack.Push(h.SequenceNumber, h.Timestamp, h.Marker, payload)
	if err != nil || (f == nil && h.Marker && !in.keySeen.Load()) {
		in.askKeyframe(arrival)
	}
	if f == nil {
		return nil
	}
	at := in.video.time(f.TS)
	in.pub.Write(&hub.Unit{Codec: hub.CodecH264, PTS: at, DTS: at, NALUs: f.NALUs, Key: f.Key})
	if f.Key {
		in.keySeen.Store(true)
	}
	return nil
}

// askKeyframe requests a key frame now, at most once per keyframeRetry.
func (in *RTCIngest) askKeyframe(now time.Time) {
	if in.cfg.Keyframes == nil || now.Sub(in.lastPLI) < keyframeRetry {
		return
	}
	in.lastPLI = now
	in.cfg.Keyframes.RequestKeyframe(in.key)
}

func (in *RTCIngest) writeAudio(payload []byte, rel time.Duration) error {
	if in.tc == nil || len(payload) == 0 {
		return nil
	}
	in.audio.observe(in.hdr.Timestamp, rel)
	at := in.audio.time(in.hdr.Timestamp)
	data := append([]byte(nil), payload...)
	tc, pub := in.tc, in.pub
	ok := in.b.pool.submit(in.slot, func() {
		out, err := tc.Transcode(data, at, nil)
		if err != nil {
			in.audioErr.Add(1)
			return
		}
		for _, o := range out {
			d := time.Duration(max(o.PTS, 0) * int64(time.Second) / transcode.SampleRate)
			pub.Write(&hub.Unit{Codec: hub.CodecAAC, PTS: d, DTS: d, Frame: o.Data})
		}
	}, func(error) { in.audioErr.Add(1) })
	if !ok {
		in.drops.Add(1)
	}
	return nil
}

// OnSenderReport feeds an RTCP SR of the publisher's track (NTP timestamp,
// RTP timestamp) received at arrival; it refines that track's clock so
// audio and video follow the sender's common NTP clock.
func (in *RTCIngest) OnSenderReport(kind Kind, ntp uint64, rtpTS uint32, arrival time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed || !in.started {
		return
	}
	t := ntpDuration(ntp)
	if !in.haveNTP {
		in.haveNTP, in.ntpOff = true, arrival.Sub(in.epoch)-t
	}
	switch kind {
	case KindVideo:
		in.video.sync(rtpTS, t+in.ntpOff)
	case KindAudio:
		in.audio.sync(rtpTS, t+in.ntpOff)
	}
}

// Key returns the hub stream the ingest publishes.
func (in *RTCIngest) Key() hub.Key { return in.key }

// Close unpublishes the stream and waits for the ingest's goroutines and
// queued transcoding jobs.
func (in *RTCIngest) Close() {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	in.mu.Unlock()
	close(in.stop)
	in.wg.Wait()
	if in.tc != nil {
		done := make(chan struct{})
		tc := in.tc
		in.b.pool.submitWait(in.slot, func() { tc.Close(); close(done) })
		<-done
	}
	in.pub.Close()
	in.b.mu.Lock()
	delete(in.b.ingests, in)
	in.b.mu.Unlock()
	in.log.Info("rtc_to_rtmp ended", "audio_dropped", in.drops.Load(), "audio_errors", in.audioErr.Load())
}
