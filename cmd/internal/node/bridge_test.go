package node

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/bridge/transcode"
)

// bridgeConfig is testConfig with one vhost rtc block and FLV/HLS on.
func bridgeConfig(rtc string) string {
	return `
listen 1935;
daemon off;
http_api { enabled on; listen 1985; }
http_server { enabled on; listen 8080; dir ./objs/nginx/html; }
rtc_server { enabled on; listen 8000; candidate 127.0.0.1; }
vhost __defaultVhost__ {
    rtc { enabled on; stun_timeout 30; ` + rtc + ` }
    http_remux { enabled on; }
    hls { enabled on; hls_fragment 1; hls_window 10; }
}
`
}

// tool runs ffmpeg or ffprobe bounded by ctx and returns its stdout (and
// stderr on failure).
func tool(ctx context.Context, name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, append([]string{"-hide_banner", "-v", "error"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %v: %w: %s", name, args, err, errb.String())
	}
	return out.String(), nil
}

// startFFmpeg runs ffmpeg in the background; cleanup kills it.
func startFFmpeg(t *testing.T, timeout time.Duration, args ...string) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)...)
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		err := cmd.Wait()
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("ffmpeg: %w: %s", err, errb.String())
		} else {
			err = nil
		}
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-exited })
	return done
}

// probeStreams returns the codec names ffprobe finds at url.
func probeStreams(ctx context.Context, url string) ([]string, error) {
	out, err := tool(ctx, "ffprobe", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url)
	return strings.Fields(strings.ReplaceAll(out, ",", " ")), err
}

func hasAll(got []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// probeAll runs probeStreams on every url at once; each must show h264
// and aac.
func probeAll(t *testing.T, timeout time.Duration, urls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := probeStreams(ctx, u)
			switch {
			case err != nil:
				t.Errorf("ffprobe %s: %v", u, err)
			case !hasAll(got, "h264", "aac"):
				t.Errorf("ffprobe %s: streams %v, want h264 + aac", u, got)
			default:
				t.Logf("ffprobe %s: %v", u, got)
			}
		}()
	}
	wg.Wait()
}

// opusPlayer is a pion WHEP player that keeps the Opus payloads and counts
// complete H.264 frames.
type opusPlayer struct {
	pc       *webrtc.PeerConnection
	mu       sync.Mutex
	opus     [][]byte
	frames   int
	started  time.Time     // the WHEP POST
	firstKey time.Duration // from started to the first complete keyframe
}

// hasIDR reports whether an Annex B access unit holds an SPS or IDR slice.
func hasIDR(au []byte) bool {
	for i := 0; i+4 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			if t := au[i+3] & 0x1f; t == 5 || t == 7 {
				return true
			}
		}
	}
	return false
}

func newOpusPlayer(t *testing.T, srv *Server, query string) *opusPlayer {
	t.Helper()
	p := &opusPlayer{pc: newPeer(t)}
	t.Cleanup(func() { _ = p.pc.Close() })
	addRecvonly(t, p.pc)
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var dep codecs.H264Packet
		var au []byte
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			p.mu.Lock()
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				p.opus = append(p.opus, append([]byte(nil), pkt.Payload...))
			} else if nals, err := dep.Unmarshal(pkt.Payload); err == nil {
				au = append(au, nals...)
				if pkt.Marker && len(au) > 0 {
					p.frames++
					if p.firstKey == 0 && hasIDR(au) {
						p.firstKey = time.Since(p.started)
					}
					au = au[:0]
				}
			}
			p.mu.Unlock()
		}
	})
	p.mu.Lock()
	p.started = time.Now()
	p.mu.Unlock()
	exchange(t, p.pc, srv.url("/rtc/v1/whep/?"+query))
	waitConnected(t, p.pc, 5*time.Second)
	return p
}

func (p *opusPlayer) counts() (frames, opus int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frames, len(p.opus)
}

// dominantHz decodes Opus packets and returns the strongest 100 Hz-step
// frequency of the left channel (Goertzel), skipping the first quarter.
func dominantHz(t *testing.T, pkts [][]byte) float64 {
	t.Helper()
	dec, err := transcode.NewOpusDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pcm []int16
	for _, p := range pkts {
		if pcm, err = dec.Decode(p, pcm); err != nil {
			t.Fatal(err)
		}
	}
	x := make([]float64, 0, len(pcm)/2)
	for i := 0; i+1 < len(pcm); i += 2 {
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
		if pw := s1*s1 + s2*s2 - k*s1*s2; pw > best {
			best, bestF = pw, f
		}
	}
	return bestF
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBridgeRTMPToRTC is issue 7's first must-show: ffmpeg pushes RTMP to
// a vhost with rtmp_to_rtc on; a pion WHEP player gets H.264 frames and
// Opus that decodes to the pushed 1 kHz tone; ffprobe reads the stream's
// HTTP-FLV and HLS as h264 + aac.
func TestBridgeRTMPToRTC(t *testing.T) {
	if !transcode.Available() {
		t.Skip("AAC→Opus needs the cgo transcoder (built with notranscode or without cgo)")
	}
	srv := startTestServerConfig(t, bridgeConfig("rtmp_to_rtc on;"))
	player := newOpusPlayer(t, srv, "app=live&stream=x") // before the stream: SRS's default description
	pushed := startFFmpeg(t, 30*time.Second, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "7",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "50",
		"-c:a", "aac", "-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", srv.RTMPAddr().Port()))
	waitUntil(t, 10*time.Second, "video at the WHEP player", func() bool { f, _ := player.counts(); return f > 0 })
	var virtual bool
	for _, st := range srv.ctl.Streams() {
		virtual = virtual || st.URL == "/live/x" && st.Publish.Active && st.Video != nil && st.Video.Codec == "H264"
	}
	if !virtual {
		t.Errorf("API does not list /live/x with an H.264 publisher: %+v", srv.ctl.Streams())
	}
	http := fmt.Sprintf("http://127.0.0.1:%d/live/x", srv.HTTPAddr().Port())
	time.Sleep(700 * time.Millisecond)
	// A player joining mid-GOP (2 s) starts from the keyframe cache.
	late := newOpusPlayer(t, srv, "app=live&stream=x")
	waitUntil(t, 5*time.Second, "a keyframe at the late player", func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		return late.firstKey > 0
	})
	if late.firstKey > 600*time.Millisecond {
		t.Errorf("late player's first keyframe after %v: the GOP cache did not serve it", late.firstKey)
	}
	t.Logf("late WHEP player of the RTMP stream: first keyframe %v after the POST", late.firstKey.Round(time.Millisecond))
	time.Sleep(1300 * time.Millisecond) // a closed HLS segment (hls_fragment 1, GOP 2 s)
	probeAll(t, 15*time.Second, http+".flv", http+".m3u8")
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	waitSessions(t, srv, 2) // the virtual publisher ended with the RTMP stream; two players remain
	if bs := srv.fp.BridgeStats(); bs.Injected < 500 || bs.InjectDropped != 0 {
		t.Errorf("fastpath bridge stats %+v", bs)
	}
	frames, opus := player.counts()
	t.Logf("WHEP player: %d H.264 frames, %d Opus packets", frames, opus)
	if frames < 100 || opus < 200 {
		t.Fatalf("WHEP player got %d frames and %d Opus packets from 7 s at 25 fps", frames, opus)
	}
	player.mu.Lock()
	pkts := player.opus
	player.mu.Unlock()
	if f := dominantHz(t, pkts); f != 1000 {
		t.Errorf("decoded Opus dominant frequency %.0f Hz, want 1000", f)
	}
}

// firstPTS returns the pts of the first video and the first audio packet
// ffprobe -show_packets lists.
func firstPTS(out string) (video, audio float64, ok bool) {
	video, audio = -1, -1
	for _, l := range strings.Fields(out) {
		kind, pts, _ := strings.Cut(l, ",")
		v, err := strconv.ParseFloat(pts, 64)
		if err != nil {
			continue
		}
		if kind == "video" && video < 0 {
			video = v
		}
		if kind == "audio" && audio < 0 {
			audio = v
		}
	}
	return video, audio, video >= 0 && audio >= 0
}

// publishFiles starts a pion WHIP publisher of the test media, looped
// twice (12 s); cleanup stops it.
func publishFiles(t *testing.T, srv *Server, query string) {
	t.Helper()
	h264, ogg := mediaFiles(t)
	pub := newTestPublisher(t, srv, query)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 {
			pub.stream(ctx, t, h264, ogg)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = pub.pc.Close() })
}

// waitHub waits until the bridge's hub has the stream live.
func waitHub(t *testing.T, srv *Server, app, stream string) {
	t.Helper()
	waitUntil(t, 10*time.Second, app+"/"+stream+" live in the bridge", func() bool {
		for _, k := range srv.link.b.Hub().Keys() {
			if k.App == app && k.Stream == stream {
				return true
			}
		}
		return false
	})
}

// TestBridgeRTCToRTMP is the second: a pion WHIP publisher (H.264 + Opus)
// on a vhost with rtc_to_rtmp on plays over RTMP and HTTP-FLV as h264 +
// aac, with audio from the first second (no SRS-style wait for RTCP SR).
func TestBridgeRTCToRTMP(t *testing.T) {
	if !transcode.Available() {
		t.Skip("Opus→AAC needs the cgo transcoder")
	}
	srv := startTestServerConfig(t, bridgeConfig("rtc_to_rtmp on; pli_for_rtmp 1;"))
	publishFiles(t, srv, "app=live&stream=y")
	waitHub(t, srv, "live", "y")
	rtmp := fmt.Sprintf("rtmp://127.0.0.1:%d/live/y", srv.RTMPAddr().Port())
	flv := fmt.Sprintf("http://127.0.0.1:%d/live/y.flv", srv.HTTPAddr().Port())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range []string{rtmp, flv} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := tool(ctx, "ffprobe", "-read_intervals", "%+3", "-show_entries",
				"stream=codec_name:packet=codec_type,pts_time", "-of", "csv=p=0", u)
			if err != nil {
				t.Errorf("ffprobe %s: %v", u, err)
				return
			}
			fields := strings.Fields(out)
			if !hasAll(strings.Fields(strings.ReplaceAll(out, ",", " ")), "h264", "aac") {
				t.Errorf("ffprobe %s: no h264 + aac streams in %d lines", u, len(fields))
			}
			v, a, ok := firstPTS(out)
			if !ok || math.Abs(v-a) > 0.5 {
				t.Errorf("ffprobe %s: first video pts %.3f, first audio pts %.3f (want both, within 0.5 s)", u, v, a)
				return
			}
			t.Logf("ffprobe %s: h264 + aac, first video %.3f s, first audio %.3f s, %d packets in 3 s", u, v, a, len(fields))
		}()
	}
	wg.Wait()
	if bs := srv.fp.BridgeStats(); bs.Tapped < 100 || bs.TapDropped != 0 || bs.KeyframeReqs == 0 {
		t.Errorf("fastpath bridge stats %+v", bs)
	}
}

// TestBridgeRoomToLive is the third (the spec's "Room to Live"): two WHIP
// publishers with rtc_to_rtmp on, merged by the spec's ffmpeg overlay +
// amix command into rtmp://…/live/merge, which plays over HTTP-FLV.
func TestBridgeRoomToLive(t *testing.T) {
	if !transcode.Available() {
		t.Skip("Opus→AAC needs the cgo transcoder")
	}
	srv := startTestServerConfig(t, bridgeConfig("rtc_to_rtmp on; pli_for_rtmp 1;"))
	publishFiles(t, srv, "app=live&stream=a")
	publishFiles(t, srv, "app=live&stream=b")
	waitHub(t, srv, "live", "a")
	waitHub(t, srv, "live", "b")
	base := fmt.Sprintf("rtmp://127.0.0.1:%d/live/", srv.RTMPAddr().Port())
	merged := startFFmpeg(t, 30*time.Second,
		"-analyzeduration", "1000000", "-f", "flv", "-i", base+"a",
		"-analyzeduration", "1000000", "-f", "flv", "-i", base+"b",
		"-filter_complex", "[1:v]scale=w=96:h=72[ckout];[0:v][ckout]overlay=x=W-w-10:y=H-h-10[out]", "-map", "[out]",
		"-c:v", "libx264", "-profile:v", "high", "-preset", "veryfast", "-tune", "zerolatency",
		"-filter_complex", "amix", "-c:a", "aac", "-t", "6",
		"-f", "flv", base+"merge")
	waitHub(t, srv, "live", "merge")
	probeAll(t, 15*time.Second, fmt.Sprintf("http://127.0.0.1:%d/live/merge.flv", srv.HTTPAddr().Port()))
	select {
	case err := <-merged:
		if err != nil {
			t.Fatal(err)
		}
	default: // still merging; cleanup stops it
	}
}
