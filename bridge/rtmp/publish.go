package rtmp

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/fanout/fanout/bridge/hub"
)

// ingest turns one RTMP publisher's callbacks into hub units.
type ingest struct {
	pub      *hub.Publisher
	sps, pps []byte
}

func (s *Server) publish(c net.Conn, sc *conn, key hub.Key, log *slog.Logger) error {
	if _, live := s.cfg.Hub.Tracks(key); live {
		_ = sc.refuse("NetStream.Publish.BadName", "stream is busy")
		return hub.ErrStreamBusy
	}
	if err := sc.startPublish(); err != nil {
		return err
	}
	r := &gortmplib.Reader{Conn: sc}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("rtmp tracks: %w", err)
	}
	var tr hub.Tracks
	var video, audio *gortmplib.Track
	for _, t := range r.Tracks() {
		switch codec := t.Codec.(type) {
		case *codecs.H264:
			if video == nil {
				video, tr.Video = t, hub.CodecH264
			}
		case *codecs.MPEG4Audio:
			if audio == nil && codec.Config != nil {
				asc, err := codec.Config.Marshal()
				if err != nil {
					return fmt.Errorf("rtmp aac config: %w", err)
				}
				audio, tr.Audio, tr.AudioConfig = t, hub.CodecAAC, asc
				tr.SampleRate, tr.Channels = codec.Config.SampleRate, channels(codec.Config.ChannelConfig)
			}
		}
	}
	if video == nil && audio == nil {
		return ErrNoTracks
	}
	pub, err := s.cfg.Hub.Publish(key, tr)
	if err != nil {
		return err
	}
	defer pub.Close()
	in := &ingest{pub: pub}
	if video != nil {
		if h, ok := video.Codec.(*codecs.H264); ok {
			in.sps, in.pps = clone(h.SPS), clone(h.PPS)
		}
		r.OnDataH264(video, in.onH264)
	}
	if audio != nil {
		r.OnDataMPEG4Audio(audio, in.onAAC)
	}
	log.Info("rtmp publish started", "video", tr.Video.String(), "audio", tr.Audio.String())
	for {
		_ = c.SetReadDeadline(time.Now().Add(s.cfg.Timeout))
		if err := r.Read(); err != nil {
			return fmt.Errorf("rtmp read: %w", err)
		}
	}
}

func channels(cfg uint8) int {
	if cfg == 7 {
		return 8
	}
	if cfg == 0 {
		return 2
	}
	return int(cfg)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// onH264 stores parameter-set-only units (sequence headers) and makes every
// IDR unit carry the current SPS and PPS in-band.
func (in *ingest) onH264(pts, dts time.Duration, au [][]byte) {
	other := 0
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1F) {
		case h264.NALUTypeSPS:
			in.sps = clone(n)
		case h264.NALUTypePPS:
			in.pps = clone(n)
		default:
			other++
		}
	}
	if other == 0 {
		return
	}
	key := h264.IsRandomAccess(au)
	u := &hub.Unit{Codec: hub.CodecH264, PTS: pts, DTS: dts, Key: key}
	u.NALUs = make([][]byte, 0, len(au)+2)
	if key && in.sps != nil && in.pps != nil {
		u.NALUs = append(u.NALUs, in.sps, in.pps)
	}
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if t := h264.NALUType(n[0] & 0x1F); key && (t == h264.NALUTypeSPS || t == h264.NALUTypePPS) {
			continue
		}
		u.NALUs = append(u.NALUs, clone(n))
	}
	in.pub.Write(u)
}

func (in *ingest) onAAC(pts time.Duration, au []byte) {
	in.pub.Write(&hub.Unit{Codec: hub.CodecAAC, PTS: pts, DTS: pts, Frame: clone(au)})
}
