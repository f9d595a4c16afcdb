package rtmp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/fanout/fanout/bridge/hub"
)

// player writes one hub stream to an RTMP player.
type player struct {
	c            net.Conn
	w            *gortmplib.Writer
	video, audio *gortmplib.Track
	base         time.Duration
	timeout      time.Duration
}

// play serves one RTMP player. A stream that is not live yet is waited
// for (SRS's players may come before the publisher), up to Config.Wait
// for it to publish and send its first key frame; the player leaving ends
// the wait.
func (s *Server) play(c net.Conn, sc *conn, key hub.Key, log *slog.Logger) error {
	if err := sc.startPlay(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = c.SetReadDeadline(time.Time{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the player's commands are read and discarded; EOF ends play
		defer wg.Done()
		_, _ = io.Copy(io.Discard, c)
		cancel()
	}()
	defer wg.Wait()
	defer c.Close()
	rd, first, err := s.waitFirst(ctx, key)
	if err != nil {
		_ = sc.refuse("NetStream.Play.StreamNotFound", "stream not found")
		return err
	}
	defer rd.Close()
	defer context.AfterFunc(ctx, rd.Close)()
	tr := rd.Tracks()
	p := &player{c: c, base: first.DTS, timeout: s.cfg.Timeout}
	if err := p.init(sc, tr, first); err != nil {
		return err
	}
	log.Info("rtmp play started")
	if err := p.write(first); err != nil {
		return err
	}
	for u := range rd.Units() {
		if err := p.write(u); err != nil {
			return err
		}
	}
	log.Info("rtmp play ended", "dropped", rd.Dropped())
	return nil
}

// waitFirst subscribes to key, waiting up to Config.Wait for it to go live
// and for the first unit a player can start with: a key frame when the
// stream has video.
func (s *Server) waitFirst(ctx context.Context, key hub.Key) (*hub.Reader, *hub.Unit, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Wait)
	defer cancel()
	rd, err := s.cfg.Hub.SubscribeWait(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	video := rd.Tracks().Video != hub.CodecNone
	for {
		select {
		case <-ctx.Done():
			rd.Close()
			return nil, nil, ctx.Err()
		case u, ok := <-rd.Units():
			if !ok {
				rd.Close()
				return nil, nil, hub.ErrNotFound
			}
			if !video || (u.IsVideo() && u.Key) {
				return rd, u, nil
			}
		}
	}
}

func (p *player) init(sc gortmplib.Conn, tr hub.Tracks, first *hub.Unit) error {
	var tracks []*gortmplib.Track
	if tr.Video == hub.CodecH264 {
		sps, pps := first.Params()
		p.video = &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
		tracks = append(tracks, p.video)
	}
	if tr.Audio == hub.CodecAAC {
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(tr.AudioConfig); err != nil {
			return fmt.Errorf("rtmp play aac config: %w", err)
		}
		p.audio = &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &asc}}
		tracks = append(tracks, p.audio)
	}
	if len(tracks) == 0 {
		return ErrNoTracks
	}
	p.w = &gortmplib.Writer{Conn: sc, Tracks: tracks}
	_ = p.c.SetWriteDeadline(time.Now().Add(p.timeout))
	if err := p.w.Initialize(); err != nil {
		return fmt.Errorf("rtmp play init: %w", err)
	}
	return nil
}

func (p *player) write(u *hub.Unit) error {
	pts, dts := rel(u.PTS, p.base), rel(u.DTS, p.base)
	_ = p.c.SetWriteDeadline(time.Now().Add(p.timeout))
	switch {
	case u.IsVideo() && p.video != nil:
		return p.w.WriteH264(p.video, pts, dts, u.NALUs)
	case u.Codec == hub.CodecAAC && p.audio != nil:
		return p.w.WriteMPEG4Audio(p.audio, pts, u.Frame)
	}
	return nil
}

func rel(d, base time.Duration) time.Duration {
	if d < base {
		return 0
	}
	return d - base
}
