package sdpneg

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// checkGoroutines fails t if, after cleanup, more goroutines run than
// before the test (pion PeerConnections start several).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

var chromeFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "transport-cc"}, {Type: "ccm", Parameter: "fir"},
	{Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

// chromeCodecs registers Chromium's codec list with Chromium's payload types.
func chromeCodecs(m *webrtc.MediaEngine) error {
	video := func(pt uint8, mime, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt), RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: chromeFeedback}}
	}
	rtx := func(pt, apt uint8) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt), RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=" + strconv.Itoa(int(apt))}}
	}
	h264 := func(pm, plid string) string {
		return "level-asymmetry-allowed=1;packetization-mode=" + pm + ";profile-level-id=" + plid
	}
	codecs := []webrtc.RTPCodecParameters{
		video(96, webrtc.MimeTypeVP8, ""), rtx(97, 96),
		video(102, webrtc.MimeTypeH264, h264("1", "42001f")), rtx(103, 102),
		video(104, webrtc.MimeTypeH264, h264("0", "42001f")), rtx(105, 104),
		video(106, webrtc.MimeTypeH264, h264("1", "42e01f")), rtx(107, 106),
		video(108, webrtc.MimeTypeH264, h264("0", "42e01f")), rtx(109, 108),
		video(127, webrtc.MimeTypeH264, h264("1", "4d001f")), rtx(125, 127),
		video(39, webrtc.MimeTypeH264, h264("0", "4d001f")), rtx(40, 39),
		video(45, webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0"), rtx(46, 45),
		video(98, webrtc.MimeTypeVP9, "profile-id=0"), rtx(99, 98),
		video(100, webrtc.MimeTypeVP9, "profile-id=2"), rtx(101, 100),
		video(112, webrtc.MimeTypeH264, h264("1", "64001f")), rtx(113, 112),
	}
	for _, c := range codecs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return m.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "transport-cc"}}}}, webrtc.RTPCodecTypeAudio)
}

// newPC builds a pion PeerConnection with either pion's default codecs or
// Chromium's, and the TWCC header extension.
func newPC(t *testing.T, chrome bool) *webrtc.PeerConnection {
	t.Helper()
	m := &webrtc.MediaEngine{}
	var err error
	if chrome {
		err = chromeCodecs(m)
	} else {
		err = m.RegisterDefaultCodecs()
	}
	if err != nil {
		t.Fatal(err)
	}
	// What RegisterDefaultInterceptors adds to the SDP: the TWCC extmap on
	// both kinds (nack, nack pli and transport-cc feedback are in the codecs).
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: TWCCURI}, k); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// pionOffer adds an audio and a video transceiver in direction dir (with
// sample tracks of opus and videoMime when sending) and returns the offer
// after SetLocalDescription.
func pionOffer(t *testing.T, pc *webrtc.PeerConnection, dir webrtc.RTPTransceiverDirection, videoMime string) string {
	t.Helper()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if dir == webrtc.RTPTransceiverDirectionSendonly {
			mime := webrtc.MimeTypeOpus
			if k == webrtc.RTPCodecTypeVideo {
				mime = videoMime
			}
			tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, k.String(), "fanout")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// acceptAnswer sets answer on pc and returns the payload type and MIME type
// pion negotiated for its audio and video transceivers.
func acceptAnswer(t *testing.T, pc *webrtc.PeerConnection, answer string, play bool) (pts []uint8, mimes []string) {
	t.Helper()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("pion SetRemoteDescription: %v\n%s", err, answer)
	}
	for _, tr := range pc.GetTransceivers() {
		var params webrtc.RTPParameters
		if play {
			params = tr.Receiver().GetParameters()
		} else {
			params = tr.Sender().GetParameters().RTPParameters
		}
		if len(params.Codecs) == 0 {
			t.Fatalf("transceiver %s: no negotiated codec", tr.Mid())
		}
		pts = append(pts, uint8(params.Codecs[0].PayloadType))
		mimes = append(mimes, strings.ToLower(params.Codecs[0].MimeType))
	}
	return pts, mimes
}

func TestPionPublisher(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name   string
		chrome bool
		codec  string
		mime   string
		pt     uint8
	}{
		{"pion default codecs", false, "", "video/h264", 0},
		{"chromium-like, default", true, "", "video/h264", 106},
		{"chromium-like, codec=vp8", true, "vp8", "video/vp8", 96},
		{"chromium-like, codec=vp9", true, "vp9", "video/vp9", 98},
		{"chromium-like, codec=av1", true, "av1", "video/av1", 45},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := newPC(t, tt.chrome)
			offer := pionOffer(t, pc, webrtc.RTPTransceiverDirectionSendonly, tt.mime)
			o := mustParse(t, offer)
			n, err := NegotiatePublish(o, Options{VideoCodec: tt.codec, NACK: true, TWCC: true})
			if err != nil {
				t.Fatal(err)
			}
			p := publishParams()
			p.Setup = ChooseSetup(o.Setup, "")
			answer := buildOrFail(t, n, p)
			pts, mimes := acceptAnswer(t, pc, answer, false)
			if mimes[0] != "audio/opus" || mimes[1] != tt.mime || pts[1] != n.Tracks[1].Codec.PT ||
				(tt.pt != 0 && pts[1] != tt.pt) {
				t.Errorf("pion negotiated %v %v; tracks %+v", pts, mimes, n.Tracks)
			}
			if n.Tracks[1].SSRC == 0 || n.Tracks[1].TWCCExt == 0 {
				t.Errorf("video track %+v: want SSRC and TWCC from pion's offer", n.Tracks[1])
			}
		})
	}
}

func TestPionPlayer(t *testing.T) {
	checkGoroutines(t)
	opus := DefaultStreamDesc().Audio
	tests := []struct {
		name   string
		chrome bool
		video  *Codec
		mime   string
		pt     uint8
	}{
		{"pion default codecs, default stream", false, DefaultStreamDesc().Video, "video/h264", 0},
		{"chromium-like, default stream", true, DefaultStreamDesc().Video, "video/h264", 106},
		{"chromium-like, high profile stream", true,
			&Codec{Name: "H264", PT: 96, ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=640c1f"},
			"video/h264", 112},
		{"chromium-like, VP9 stream", true, &Codec{Name: "VP9", PT: 98, ClockRate: 90000}, "video/vp9", 98},
		{"chromium-like, AV1 stream", true, &Codec{Name: "AV1", PT: 35, ClockRate: 90000}, "video/av1", 45},
		{"chromium-like, VP8 stream", true, &Codec{Name: "VP8", PT: 120, ClockRate: 90000}, "video/vp8", 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := newPC(t, tt.chrome)
			o := mustParse(t, pionOffer(t, pc, webrtc.RTPTransceiverDirectionRecvonly, ""))
			n, err := NegotiatePlay(o, StreamDesc{Audio: opus, Video: tt.video}, Options{NACK: true, TWCC: true})
			if err != nil {
				t.Fatal(err)
			}
			p := publishParams()
			p.Play, p.CNAME = true, "fanoutplayer0001"
			p.Setup = ChooseSetup(o.Setup, "passive")
			p.SSRCs = map[Kind]uint32{KindAudio: 10001, KindVideo: 10002}
			answer := buildOrFail(t, n, p)
			pts, mimes := acceptAnswer(t, pc, answer, true)
			if mimes[0] != "audio/opus" || mimes[1] != tt.mime || (tt.pt != 0 && pts[1] != tt.pt) {
				t.Errorf("pion negotiated %v %v; tracks %+v", pts, mimes, n.Tracks)
			}
		})
	}
}

func TestPionActiveRole(t *testing.T) {
	checkGoroutines(t)
	pc := newPC(t, false)
	o := mustParse(t, pionOffer(t, pc, webrtc.RTPTransceiverDirectionSendonly, webrtc.MimeTypeH264))
	n, err := NegotiatePublish(o, allOn)
	if err != nil {
		t.Fatal(err)
	}
	p := publishParams()
	p.Setup = ChooseSetup(o.Setup, "active")
	if p.Setup != "active" {
		t.Fatalf("setup %q", p.Setup)
	}
	acceptAnswer(t, pc, buildOrFail(t, n, p), false)
}
