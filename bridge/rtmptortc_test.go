//go:build cgo && !notranscode

package bridge

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/fanout/fanout/bridge/hub"
	"github.com/fanout/fanout/bridge/rtph264"
	"github.com/fanout/fanout/bridge/transcode"
)

// collector is a test RTCOutlet and RTPWriter that keeps every packet.
type collector struct {
	mu     sync.Mutex
	media  RTCMedia
	video  []rtp.Packet
	audio  []rtp.Packet
	closed chan struct{}
}

func (c *collector) OpenRTC(_ hub.Key, m RTCMedia) (RTPWriter, error) {
	c.media = m
	return c, nil
}

func (c *collector) WriteRTP(kind Kind, pkt []byte) error {
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), pkt...)); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == KindVideo {
		c.video = append(c.video, p)
	} else {
		c.audio = append(c.audio, p)
	}
	return nil
}

func (c *collector) Close() error { close(c.closed); return nil }

// TestRTMPToRTC pushes RTMP with ffmpeg into a vhost with rtmp_to_rtc on and
// checks the RTP the outlet receives: H.264 that pion depacketizes and
// ffmpeg decodes, SRS's packetization rules, and Opus that decodes to the
// 1 kHz tone that was pushed.
func TestRTMPToRTC(t *testing.T) {
	checkLeaks(t)
	col := &collector{closed: make(chan struct{})}
	s := startBridge(t, Config{Outlet: col, RTP: RTPConfig{VideoSSRC: 1111, AudioSSRC: 2222},
		Options: func(string) VhostOptions {
			o := DefaultVhostOptions()
			o.RTMPToRTC = true
			return o
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	push := pushTone(ctx, "rtmp://"+s.rtmpAddr+"/live/test", 5)
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg push: %v: %s", err, out)
	}
	select {
	case <-col.closed:
	case <-ctx.Done():
		t.Fatal("rtmp_to_rtc did not end with the stream")
	}
	if !col.media.Video || !col.media.Audio || col.media.RTP.VideoPT != 102 || col.media.RTP.AudioPT != 111 {
		t.Errorf("outlet media %+v, want video+audio, PT 102/111", col.media)
	}
	checkVideoRTP(ctx, t, col.video)
	checkAudioRTP(t, col.audio)
}

func checkVideoRTP(ctx context.Context, t *testing.T, pkts []rtp.Packet) {
	t.Helper()
	if len(pkts) < 100 {
		t.Fatalf("%d video packets", len(pkts))
	}
	var annexb []byte
	var h codecs.H264Packet
	staps, idrs := 0, 0
	for i, p := range pkts {
		if p.SSRC != 1111 || p.PayloadType != 102 {
			t.Fatalf("packet %d: ssrc %d pt %d", i, p.SSRC, p.PayloadType)
		}
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: seq gap", i)
		}
		if len(p.Payload) > rtph264.MaxPayload+2 {
			t.Fatalf("packet %d: payload %d > %d", i, len(p.Payload), rtph264.MaxPayload+2)
		}
		switch typ := p.Payload[0] & 0x1F; {
		case typ == 24:
			staps++
		case typ == 5 || (typ == 28 && p.Payload[1]&0x80 != 0 && p.Payload[1]&0x1F == 5):
			idrs++
			if !stapBefore(pkts, i) {
				t.Fatalf("packet %d: IDR without a STAP-A earlier in its frame", i)
			}
		}
		if last := i == len(pkts)-1 || pkts[i+1].Timestamp != p.Timestamp; last != p.Marker {
			t.Fatalf("packet %d: marker %v, frame end %v", i, p.Marker, last)
		}
		b, err := h.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("packet %d: depacketize: %v", i, err)
		}
		annexb = append(annexb, b...)
	}
	if staps == 0 || staps > idrs {
		t.Errorf("%d STAP-A for %d IDR starts", staps, idrs)
	}
	path := filepath.Join(t.TempDir(), "v.h264")
	if err := os.WriteFile(path, annexb, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(ctx, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,nb_read_frames", "-of", "csv=p=0", path)
	if err != nil {
		t.Fatalf("ffprobe h264: %v: %s", err, out)
	}
	f := strings.Split(strings.TrimSpace(out), ",")
	if len(f) != 3 || f[0] != "h264" || f[1] != "320" {
		t.Fatalf("ffprobe h264: %q", out)
	}
	if n, _ := strconv.Atoi(f[2]); n < 100 {
		t.Errorf("decoded %d frames from 5 s at 25 fps", n)
	}
}

// stapBefore reports whether the frame of packet i starts with a STAP-A.
func stapBefore(pkts []rtp.Packet, i int) bool {
	for j := i - 1; j >= 0 && pkts[j].Timestamp == pkts[i].Timestamp; j-- {
		if pkts[j].Payload[0]&0x1F == 24 {
			return true
		}
	}
	return false
}

func checkAudioRTP(t *testing.T, pkts []rtp.Packet) {
	t.Helper()
	if len(pkts) < 200 {
		t.Fatalf("%d opus packets for 5 s, want ~250", len(pkts))
	}
	dec, err := transcode.NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pcm []int16
	for i, p := range pkts {
		if p.SSRC != 2222 || p.PayloadType != 111 || !p.Marker {
			t.Fatalf("opus packet %d: ssrc %d pt %d marker %v", i, p.SSRC, p.PayloadType, p.Marker)
		}
		if i > 0 && p.Timestamp-pkts[i-1].Timestamp != 960 {
			t.Fatalf("opus packet %d: ts step %d, want 960", i, p.Timestamp-pkts[i-1].Timestamp)
		}
		if pcm, err = dec.Decode(p.Payload, pcm); err != nil {
			t.Fatal(err)
		}
	}
	if f := dominant(pcm, 2); f != 1000 {
		t.Errorf("decoded opus dominant frequency %.0f Hz, want 1000", f)
	}
}

// dominant returns the strongest 100 Hz-step frequency (Goertzel) of the
// first channel of 48 kHz interleaved pcm, skipping the first quarter.
func dominant(pcm []int16, channels int) float64 {
	x := make([]float64, 0, len(pcm)/channels)
	for i := 0; i < len(pcm); i += channels {
		x = append(x, float64(pcm[i]))
	}
	x = x[len(x)/4:]
	best, bestF := 0.0, 0.0
	for f := 100.0; f <= 8000; f += 100 {
		k := 2 * math.Cos(2*math.Pi*f/48000)
		var s1, s2 float64
		for _, v := range x {
			s1, s2 = v+k*s1-s2, s1
		}
		if p := s1*s1 + s2*s2 - k*s1*s2; p > best {
			best, bestF = p, f
		}
	}
	return bestF
}
