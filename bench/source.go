package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Synthetic H.264 parameter sets (Constrained Baseline 3.1, 640x360, made by
// x264), sent in a STAP-A before each IDR so servers that look for
// keyframes, cache them or bridge to RTMP see a well-formed stream.
var (
	synthSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48}
	synthPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

// audioPktBytes is the payload of a synthetic 20 ms Opus packet.
const audioPktBytes = 120

// stamp writes the magic and the bench clock at stampOffset of payload.
func stamp(payload []byte) {
	if len(payload) < stampOffset+stampLen {
		return
	}
	binary.BigEndian.PutUint64(payload[stampOffset:], stampMagic)
	binary.BigEndian.PutUint64(payload[stampOffset+8:], uint64(monoNow()))
}

// synthFrame returns the RTP payloads of one video frame: n packets of
// size bytes, FU-A fragments of one slice (IDR when key, after a STAP-A with
// SPS and PPS), or a single NAL unit when n is 1 (RFC 6184 §5.6, §5.7, §5.8).
func synthFrame(dst [][]byte, key bool, n, size int) [][]byte {
	dst = dst[:0]
	nalHdr, typ := byte(0x41), byte(1)
	if key {
		nalHdr, typ = 0x65, 5
		stap := []byte{0x78}
		stap = binary.BigEndian.AppendUint16(stap, uint16(len(synthSPS)))
		stap = append(stap, synthSPS...)
		stap = binary.BigEndian.AppendUint16(stap, uint16(len(synthPPS)))
		stap = append(stap, synthPPS...)
		dst = append(dst, stap)
	}
	for i := range n {
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(j*7 + 1)
		}
		if n == 1 {
			p[0] = nalHdr
		} else {
			p[0] = nalHdr&0xe0 | 28
			p[1] = typ
			if i == 0 {
				p[1] |= 0x80
			}
			if i == n-1 {
				p[1] |= 0x40
			}
		}
		dst = append(dst, p)
	}
	return dst
}

// runSynthetic sends the synthetic stream until ctx ends: one video frame
// burst every 1/FPS and one audio packet every 20 ms, each payload stamped.
func (p *Publisher) runSynthetic(ctx context.Context, video, audio webrtc.TrackLocal) {
	vt := video.(*webrtc.TrackLocalStaticRTP)
	at := audio.(*webrtc.TrackLocalStaticRTP)
	audioBps := 50 * audioPktBytes * 8
	videoBps := max(p.cfg.Bitrate-audioBps, 8*p.cfg.PktSize)
	perFrame := max(1, (videoBps/8/p.cfg.FPS+p.cfg.PktSize-1)/p.cfg.PktSize)
	frameDur := time.Second / time.Duration(p.cfg.FPS)
	gopFrames := max(1, int(p.cfg.GOP/frameDur))
	var vpkt, apkt rtp.Packet
	vpkt.Version, apkt.Version = 2, 2
	vpkt.SSRC, apkt.SSRC = 0x1234, 0x5678
	apay := make([]byte, audioPktBytes)
	apay[0], apay[1] = 0xfc, 0xff
	var frames [][]byte
	start := time.Now()
	var frameNo, audioNo int
	lastKF := time.Time{}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		el := time.Since(start)
		if p.paused.Load() {
			audioNo = int(el / (20 * time.Millisecond))
			frameNo = int(el / frameDur)
			continue
		}
		if time.Duration(frameNo)*frameDur <= el {
			if held := p.frameEdge(); held > 0 {
				// Resume where the stream stopped: no catch-up burst of
				// the frames the hold (a sink drain) would have sent.
				start = start.Add(held)
				el -= held
			}
		}
		for time.Duration(audioNo)*20*time.Millisecond <= el {
			apkt.SequenceNumber++
			apkt.Timestamp = uint32(audioNo * 960)
			stamp(apay)
			apkt.Payload = apay
			if at.WriteRTP(&apkt) == nil {
				p.sent.Add(1)
			}
			audioNo++
		}
		for time.Duration(frameNo)*frameDur <= el {
			key := frameNo%gopFrames == 0
			if p.kfReq.Swap(false) && time.Since(lastKF) > 300*time.Millisecond {
				key = true
			}
			if key {
				lastKF = time.Now()
			}
			frames = synthFrame(frames, key, perFrame, p.cfg.PktSize)
			vpkt.Timestamp = uint32(frameNo * 90000 / p.cfg.FPS)
			p.sendFrame(vt, &vpkt, frames)
			frameNo++
		}
	}
}

// sendFrame writes one frame's packets, stamping each just before writing.
func (p *Publisher) sendFrame(vt *webrtc.TrackLocalStaticRTP, pkt *rtp.Packet, frames [][]byte) {
	for i, pl := range frames {
		pkt.SequenceNumber++
		pkt.Marker = i == len(frames)-1
		stamp(pl)
		pkt.Payload = pl
		if vt.WriteRTP(pkt) == nil {
			p.sent.Add(1)
		}
	}
}

// runFiles loops an H.264 Annex-B file and an Ogg/Opus file in real time.
// These payloads carry no stamp, so latency is reported as unavailable.
func (p *Publisher) runFiles(ctx context.Context, video, audio webrtc.TrackLocal) {
	vt := video.(*webrtc.TrackLocalStaticSample)
	at := audio.(*webrtc.TrackLocalStaticSample)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.loopOgg(ctx, at)
	}()
	p.loopH264(ctx, vt)
	<-done
}

func (p *Publisher) loopH264(ctx context.Context, t *webrtc.TrackLocalStaticSample) {
	frameDur := time.Second / time.Duration(p.cfg.FPS)
	tick := time.NewTicker(frameDur)
	defer tick.Stop()
	for ctx.Err() == nil {
		f, err := os.Open(p.cfg.H264File)
		if err != nil {
			return
		}
		r, err := h264reader.NewReader(f)
		if err != nil {
			f.Close()
			return
		}
		var au []byte
		for ctx.Err() == nil {
			nal, err := r.NextNAL()
			if err != nil {
				break
			}
			au = append(au, 0, 0, 0, 1)
			au = append(au, nal.Data...)
			if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
				continue
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			if t.WriteSample(media.Sample{Data: au, Duration: frameDur}) == nil {
				p.sent.Add(uint64(1 + len(au)/1200))
			}
			au = nil
		}
		f.Close()
	}
}

func (p *Publisher) loopOgg(ctx context.Context, t *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		f, err := os.Open(p.cfg.OggFile)
		if err != nil {
			return
		}
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			f.Close()
			return
		}
		var last uint64
		for ctx.Err() == nil {
			page, hdr, err := r.ParseNextPage()
			if errors.Is(err, io.EOF) || err != nil {
				break
			}
			dur := time.Duration(hdr.GranulePosition-last) * time.Second / 48000
			last = hdr.GranulePosition
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			if t.WriteSample(media.Sample{Data: page, Duration: dur}) == nil {
				p.sent.Add(1)
			}
		}
		f.Close()
	}
}
