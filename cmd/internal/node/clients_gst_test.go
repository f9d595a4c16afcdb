package node

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gstSeconds is how long the GStreamer publishers run: past the 30 s at
// which a libnice publisher, which sends only Binding Indications after its
// first checks, used to be cut (issue 15).
const gstSeconds = 90

// GStreamer pipelines for simple-whip-client (shared/clients/README.md),
// kept small for two shared cores.
const (
	gstOpus = "audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ssrc=1 ! " +
		"application/x-rtp,media=audio,encoding-name=OPUS,payload=111"
	gstH264 = "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! " +
		"x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast bitrate=300 ! video/x-h264,profile=constrained-baseline ! " +
		"rtph264pay pt=96 ssrc=2 config-interval=-1 ! application/x-rtp,media=video,encoding-name=H264,payload=96"
	gstVP8 = "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert ! " +
		"vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=300000 ! rtpvp8pay pt=97 ssrc=2 ! " +
		"application/x-rtp,media=video,encoding-name=VP8,payload=97"
)

// gstStream is one GStreamer publisher and its two players.
type gstStream struct {
	name  string
	args  []string
	pub   *netnsChild
	pion  *netnsChild
	aio   *netnsChild
	files [2]string // pion's, aiortc's
}

// TestClientsGStreamer publishes with GStreamer's webrtcbin + libnice
// (simple-whip-client) H.264 + Opus trickled, H.264 + Opus with the
// candidates in the offer (-n), and VP8 + Opus, for gstSeconds, while a
// pion and an aiortc player play each stream: both receive the same
// payloads, keyframes and decodable frames, until the end. A fourth
// publisher is frozen (SIGSTOP) and is still cut at stun_timeout.
func TestClientsGStreamer(t *testing.T) {
	whip := requireWhipClient(t)
	requireAiortc(t)
	p := newNetnsPair(t, 0)
	api := p.startFanout(t, "")
	begin := time.Now()
	streams := []*gstStream{
		{name: "gst-h264", args: []string{"-A", gstOpus, "-V", gstH264}},
		{name: "gst-h264-n", args: []string{"-n", "-A", gstOpus, "-V", gstH264}},
		{name: "gst-vp8", args: []string{"-A", gstOpus, "-V", gstVP8}},
	}
	whipURL := func(s string) string { return api + "/rtc/v1/whip/?app=live&stream=" + s }
	for _, s := range streams {
		s.pub = p.spawn(t, p.A, "whip-"+s.name, nil, append([]string{whip, "-u", whipURL(s.name)}, s.args...)...)
	}
	silent := p.spawn(t, p.A, "whip-gst-silent", nil, whip, "-u", whipURL("gst-silent"), "-A", gstOpus, "-V", gstH264)
	for _, s := range append(streams, &gstStream{name: "gst-silent"}) {
		p.waitPublisher(t, api, s.name, 20*time.Second)
	}
	published := time.Now()
	t.Logf("4 GStreamer publishers up in %v", published.Sub(begin).Round(time.Millisecond))

	play := gstSeconds - int(time.Since(begin).Seconds()) - 3
	for _, s := range streams {
		url := api + "/rtc/v1/whep/?app=live&stream=" + s.name
		s.pion, s.files[0] = p.startPionPlayer(t, url, play)
		s.files[1] = filepath.Join(t.TempDir(), "aiortc.json")
		s.aio = p.startAiortc(t, "aiortc-"+s.name, "play", url, strconv.Itoa(play), s.files[1])
	}

	// Freeze the fourth publisher: it stops sending anything at all.
	if err := syscall.Kill(silent.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	cut := gstWatch(t, p, api, streams, frozen, time.Duration(play+8)*time.Second)
	if cut == 0 {
		t.Errorf("the frozen publisher was never cut (stun_timeout 30)")
	} else if cut < 25*time.Second || cut > 42*time.Second {
		t.Errorf("the frozen publisher was cut %v after it froze, want about stun_timeout (30 s)", cut)
	}

	final := p.clients(t, api)
	alive := time.Since(begin)
	for _, s := range streams {
		pub, ok := publisherOf(final, s.name)
		if !ok {
			t.Errorf("%s: publisher gone after %v", s.name, alive.Round(time.Second))
		}
		select {
		case <-s.pub.done:
			t.Errorf("%s: whip-client exited", s.name)
		default:
		}
		checkGstPlayers(t, s, pub, float64(play)/time.Since(published).Seconds())
	}
	t.Logf("GStreamer publishers alive after %v; the frozen one cut %v after it froze", alive.Round(time.Second), cut.Round(time.Second))
}

// gstWatch polls Fanout's sessions until the players exit (at most d): the
// live publishers must stay, and it returns when, after frozen, the frozen
// publisher's session ended (0: never).
func gstWatch(t *testing.T, p *netnsPair, api string, streams []*gstStream, frozen time.Time, d time.Duration) time.Duration {
	t.Helper()
	var cut time.Duration
	deadline := time.Now().Add(d)
	for {
		cs := p.clients(t, api)
		if _, ok := publisherOf(cs, "gst-silent"); !ok && cut == 0 {
			cut = time.Since(frozen)
		}
		running := 0
		for _, s := range streams {
			for _, c := range []*netnsChild{s.pion, s.aio} {
				select {
				case <-c.done:
				default:
					running++
				}
			}
		}
		if running == 0 || time.Now().After(deadline) {
			return cut
		}
		time.Sleep(time.Second)
	}
}

// checkGstPlayers compares a stream's two players with each other and with
// the publisher's packet count (share: the part of the publishing time the
// players played).
func checkGstPlayers(t *testing.T, s *gstStream, pub apiClient, share float64) {
	t.Helper()
	if err := s.pion.wait(5 * time.Second); err != nil {
		t.Errorf("%s: pion player: %v", s.name, err)
		return
	}
	if err := s.aio.exited(5 * time.Second); err != nil {
		t.Errorf("%s: aiortc player: %v", s.name, err)
		return
	}
	pion, aio := readClientRecv(t, s.files[0]), readClientRecv(t, s.files[1])
	var report []string
	for k, kind := range []string{"audio", "video"} {
		a, b := pion.ordered(kind), aio.ordered(kind)
		n, err := compareStreams(a, b)
		if err != nil {
			t.Errorf("%s %s: pion (%d packets) and aiortc (%d) differ: %v", s.name, kind, len(a), len(b), err)
		} else if n < min(len(a), len(b))*9/10 {
			t.Errorf("%s %s: only %d packets in common (pion %d, aiortc %d)", s.name, kind, n, len(a), len(b))
		}
		var sent uint64
		if k < len(pub.Quality.Tracks) {
			sent = pub.Quality.Tracks[k].Packets
		}
		if want := int(float64(sent) * share * 0.85); sent == 0 || len(a) < want || len(b) < want {
			t.Errorf("%s %s: pion got %d, aiortc %d packets; the publisher sent %d, want ≥ %d in the players' share",
				s.name, kind, len(a), len(b), sent, want)
		}
		report = append(report, fmt.Sprintf("%s %d/%d/%d in common/pion/aiortc of %d published", kind, n, len(a), len(b), sent))
	}
	if pion.Frames["video_keyframes"] == 0 || aio.Frames["video_keyframes"] == 0 || aio.Frames["video"] < 100 {
		t.Errorf("%s: keyframes pion %d, aiortc %d; aiortc decoded %d video frames", s.name,
			pion.Frames["video_keyframes"], aio.Frames["video_keyframes"], aio.Frames["video"])
	}
	for who, r := range map[string]clientRecv{"pion": pion, "aiortc": aio} {
		if r.LastAgeM > 1000 {
			t.Errorf("%s: the %s player's last packet came %d ms before it stopped", s.name, who, r.LastAgeM)
		}
	}
	t.Logf("%s: %s; pion saw %d keyframe starts, aiortc decoded %d video and %d audio frames", s.name,
		strings.Join(report, "; "), pion.Frames["video_keyframes"], aio.Frames["video"], aio.Frames["audio"])
}
