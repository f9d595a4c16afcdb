//go:build cgo && !notranscode

package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/fanout/fanout/bridge/flv"
	"github.com/fanout/fanout/bridge/hub"
)

// rtcPacket is one RTP packet of the synthetic WebRTC publisher.
type rtcPacket struct {
	kind Kind
	at   time.Duration // media time
	raw  []byte
}

type countingRequester struct{ n atomic.Int32 }

func (c *countingRequester) RequestKeyframe(hub.Key) { c.n.Add(1) }

// makeRTC encodes secs of test video and a 1 kHz tone with ffmpeg and
// packetizes them with pion into one schedule ordered by media time.
func makeRTC(ctx context.Context, t *testing.T, secs string) []rtcPacket {
	t.Helper()
	dir := t.TempDir()
	vpath, apath := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	if out, err := run(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		"testsrc=size=320x240:rate=25", "-t", secs, "-c:v", "libx264", "-preset", "veryfast",
		"-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "50", "-f", "h264", vpath); err != nil {
		t.Fatalf("ffmpeg h264: %v: %s", err, out)
	}
	if out, err := run(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		"sine=frequency=1000:sample_rate=48000", "-t", secs, "-c:a", "libopus", "-b:a", "48k",
		"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", apath); err != nil {
		t.Fatalf("ffmpeg opus: %v: %s", err, out)
	}
	pkts := videoPackets(t, vpath)
	pkts = append(pkts, audioPackets(t, apath)...)
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].at < pkts[j].at })
	return pkts
}

func videoPackets(t *testing.T, path string) []rtcPacket {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	pz := rtp.NewPacketizer(1200, 102, 0x1234, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	var out []rtcPacket
	var au []byte
	frame := 0
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		au = append(append(au, 0, 0, 0, 1), nal.Data...)
		if typ := nal.UnitType; typ != h264reader.NalUnitTypeCodedSliceIdr && typ != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		at := time.Duration(frame) * 40 * time.Millisecond
		for _, p := range pz.Packetize(au, 3600) {
			b, _ := p.Marshal()
			out = append(out, rtcPacket{kind: KindVideo, at: at, raw: b})
		}
		au, frame = au[:0], frame+1
	}
}

func audioPackets(t *testing.T, path string) []rtcPacket {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	pz := rtp.NewPacketizer(1200, 111, 0x5678, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	var out []rtcPacket
	for n := 0; ; {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		for _, p := range pz.Packetize(page, 960) {
			b, _ := p.Marshal()
			out = append(out, rtcPacket{kind: KindAudio, at: time.Duration(n) * 20 * time.Millisecond, raw: b})
		}
		n++
	}
}

// TestRTCToRTMP feeds RTP built from ffmpeg-encoded H.264 and Opus into an
// RTCIngest (no RTCP SR for the first 2 s) and reads the stream back over
// HTTP-FLV: ffprobe sees h264 + aac, audio starts within 0.5 s of video and
// covers the whole stream (SRS would drop audio until the second SR), and
// key frames were requested every pli_for_rtmp.
func TestRTCToRTMP(t *testing.T) {
	checkLeaks(t)
	s := startBridge(t, Config{Options: func(string) VhostOptions {
		o := DefaultVhostOptions()
		o.PLIForRTMP = 500 * time.Millisecond
		return o
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	pkts := makeRTC(ctx, t, "4")
	req := &countingRequester{}
	in, err := s.b.IngestRTC(hub.NewKey("", "live", "show"), IngestConfig{Video: true, Audio: true, Keyframes: req})
	if err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(t.TempDir(), "show.flv")
	fetched := make(chan error, 1)
	go func() { fetched <- fetch(ctx, s.httpURL+"/live/show.flv", rec) }()
	time.Sleep(100 * time.Millisecond) // let the HTTP-FLV reader subscribe
	feedRTC(t, in, pkts, 2)
	time.Sleep(300 * time.Millisecond) // let queued transcoding finish
	in.Close()
	if err := <-fetched; err != nil {
		t.Fatal(err)
	}
	if got := probeCodecs(ctx, t, rec); !hasCodecs(got, "h264", "aac") {
		t.Errorf("ffprobe of rtc_to_rtmp FLV: %v, want h264 and aac", got)
	}
	checkFLVSync(t, rec)
	if n := req.n.Load(); n < 2 {
		t.Errorf("%d key frame requests in ~2 s with pli_for_rtmp 0.5 s", n)
	}
}

// feedRTC writes the schedule at speed× real time, with an SR per track
// at media time 2 s.
func feedRTC(t *testing.T, in *RTCIngest, pkts []rtcPacket, speed int) {
	t.Helper()
	t0 := time.Now()
	first := map[Kind]uint32{}
	srSent := false
	for _, p := range pkts {
		if d := time.Until(t0.Add(p.at / time.Duration(speed))); d > 0 {
			time.Sleep(d)
		}
		var h rtp.Header
		if _, err := h.Unmarshal(p.raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := first[p.kind]; !ok {
			first[p.kind] = h.Timestamp
		}
		if !srSent && p.at >= 2*time.Second {
			srSent = true
			ntp := uint64(3_900_000_000+2) << 32
			in.OnSenderReport(KindVideo, ntp, first[KindVideo]+2*90000, t0.Add(2*time.Second))
			in.OnSenderReport(KindAudio, ntp, first[KindAudio]+2*48000, t0.Add(2*time.Second))
		}
		if err := in.WriteRTP(p.kind, p.raw, t0.Add(p.at)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFLVSync reads the recorded FLV: first audio within 0.5 s of the
// first video, audio spanning most of the 4 s, timestamps monotonic.
func checkFLVSync(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := flv.NewReader(f)
	if _, _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	firstV, firstA, lastA, lastTS := int64(-1), int64(-1), int64(0), map[flv.TagType]uint32{}
	for {
		tag, err := r.ReadTag()
		if err != nil {
			break
		}
		if tag.Timestamp < lastTS[tag.Type] {
			t.Fatalf("%d tag timestamp went back: %d after %d", tag.Type, tag.Timestamp, lastTS[tag.Type])
		}
		lastTS[tag.Type] = tag.Timestamp
		switch {
		case tag.Type == flv.TagVideo && firstV < 0:
			firstV = int64(tag.Timestamp)
		case tag.Type == flv.TagAudio:
			if a, err := flv.ParseAudio(tag.Body); err == nil && a.Frame != nil {
				if firstA < 0 {
					firstA = int64(tag.Timestamp)
				}
				lastA = int64(tag.Timestamp)
			}
		}
	}
	t.Logf("first video %d ms, first audio %d ms, audio span %d ms", firstV, firstA, lastA-firstA)
	if firstV < 0 || firstA < 0 {
		t.Fatalf("first video %d ms, first audio %d ms", firstV, firstA)
	}
	if d := firstA - firstV; d > 500 || d < -500 {
		t.Errorf("first audio at %d ms, first video at %d ms: more than 0.5 s apart", firstA, firstV)
	}
	if span := lastA - firstA; span < 3500 {
		t.Errorf("audio spans %d ms of a 4 s stream", span)
	}
}

// fetch copies an HTTP body to a file until EOF or ctx ends.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
