package sdpneg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var allOn = Options{NACK: true, TWCC: true}

func TestNegotiatePublishCurl(t *testing.T) {
	n, err := NegotiatePublish(mustParse(t, curlOffer), allOn)
	if err != nil {
		t.Fatal(err)
	}
	want := []Track{
		{Kind: KindAudio, Mid: "0", SSRC: 3184534672,
			Codec: Codec{Name: "opus", PT: 111, ClockRate: 48000, Channels: 2}},
		{Kind: KindVideo, Mid: "1", SSRC: 512761356,
			Codec: Codec{Name: "H264", PT: 106, ClockRate: 90000}},
	}
	if !reflect.DeepEqual(n.Tracks, want) {
		t.Errorf("tracks\n got %+v\nwant %+v", n.Tracks, want)
	}
}

func TestNegotiatePublishChrome(t *testing.T) {
	fb := []string{"transport-cc", "ccm fir", "nack", "nack pli"}
	tests := []struct {
		name      string
		opt       Options
		audioPT   uint8
		videoPT   uint8
		videoName string
		videoFmtp string
	}{
		{"default prefers 42e01f pm=1 lasym=1", allOn, 111, 106, "H264",
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{"codec=h264", Options{VideoCodec: "H264", NACK: true, TWCC: true}, 111, 106, "H264", ""},
		{"codec=vp8", Options{VideoCodec: "vp8", NACK: true, TWCC: true}, 111, 96, "VP8", ""},
		{"codec=vp9", Options{VideoCodec: "VP9", NACK: true, TWCC: true}, 111, 98, "VP9", "profile-id=0"},
		{"codec=av1", Options{VideoCodec: "av1", NACK: true, TWCC: true}, 111, 45, "AV1", "level-idx=5;profile=0;tier=0"},
		{"unknown codec= is the default", Options{VideoCodec: "foo", NACK: true, TWCC: true}, 111, 106, "H264", ""},
		{"acodec=pcmu", Options{AudioCodec: "pcmu", NACK: true, TWCC: true}, 0, 106, "H264", ""},
		{"acodec=pcma", Options{AudioCodec: "PCMA", NACK: true, TWCC: true}, 8, 106, "H264", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NegotiatePublish(mustParse(t, chromePublishOffer(t)), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Tracks) != 2 {
				t.Fatalf("tracks %+v", n.Tracks)
			}
			a, v := n.Tracks[0], n.Tracks[1]
			if a.Codec.PT != tt.audioPT || v.Codec.PT != tt.videoPT || v.Codec.Name != tt.videoName {
				t.Errorf("audio %+v video %+v", a.Codec, v.Codec)
			}
			if tt.videoFmtp != "" && v.Codec.Fmtp != tt.videoFmtp {
				t.Errorf("video fmtp %q", v.Codec.Fmtp)
			}
			if !reflect.DeepEqual(v.Codec.Feedback, fb) {
				t.Errorf("video feedback %q", v.Codec.Feedback)
			}
			if v.SSRC != 2847396211 || v.RTXSSRC != 1702561993 || a.SSRC != 1351924622 {
				t.Errorf("ssrcs a=%d v=%d rtx=%d", a.SSRC, v.SSRC, v.RTXSSRC)
			}
			if a.TWCCExt != 3 || v.TWCCExt != 3 {
				t.Errorf("twcc ext a=%d v=%d", a.TWCCExt, v.TWCCExt)
			}
		})
	}
}

func TestNegotiateOpusFmtpAndFeedback(t *testing.T) {
	s := strings.Replace(chromePublishOffer(t), "a=fmtp:111 minptime=10;useinbandfec=1",
		"a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;usedtx=1;maxaveragebitrate=128000", 1)
	n, err := NegotiatePublish(mustParse(t, s), allOn)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Tracks[0].Codec.Fmtp; got != "minptime=10;useinbandfec=1;stereo=1;usedtx=1" {
		t.Errorf("opus fmtp %q", got)
	}
	if got := n.Tracks[0].Codec.Feedback; !reflect.DeepEqual(got, []string{"transport-cc"}) {
		t.Errorf("opus feedback %q", got)
	}

	n, err = NegotiatePublish(mustParse(t, s), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := n.Tracks[1]
	if !reflect.DeepEqual(v.Codec.Feedback, []string{"ccm fir"}) || v.TWCCExt != 0 {
		t.Errorf("NACK/TWCC off: feedback %q twcc %d", v.Codec.Feedback, v.TWCCExt)
	}
}

func TestNegotiateTWCCNeedsExtmap(t *testing.T) {
	s := strings.ReplaceAll(chromePublishOffer(t),
		"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n", "")
	n, err := NegotiatePublish(mustParse(t, s), allOn)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range n.Tracks {
		if tr.TWCCExt != 0 || contains(tr.Codec.Feedback, "transport-cc") {
			t.Errorf("%s: twcc without extmap: %+v", tr.Kind, tr)
		}
	}
}

// videoOffer is the curl offer with the video m-line's payload list and
// rtpmap/fmtp lines replaced.
func videoOffer(pts, attrs string) string {
	return strings.Replace(strings.Replace(curlOffer, "m=video 9 UDP/TLS/RTP/SAVPF 106", "m=video 9 UDP/TLS/RTP/SAVPF "+pts, 1),
		"a=rtpmap:106 H264/90000", attrs, 1)
}

func TestNegotiateVideoChoice(t *testing.T) {
	tests := []struct {
		name   string
		pts    string
		attrs  string
		codec  string
		wantPT uint8
	}{
		{"pm1+lasym1 over backup", "100 101",
			"a=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=0;profile-level-id=42e01f\r\n" +
				"a=rtpmap:101 H264/90000\r\na=fmtp:101 packetization-mode=1;level-asymmetry-allowed=1;profile-level-id=4d001f",
			"", 101},
		{"backup: first H264", "100 101",
			"a=rtpmap:100 h264/90000\r\na=fmtp:100 packetization-mode=0\r\na=rtpmap:101 H264/90000", "", 100},
		{"no H264: first supported in offer order", "97 96 98",
			"a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:96 VP9/90000\r\na=rtpmap:98 VP8/90000", "", 96},
		{"AV1X is AV1", "35", "a=rtpmap:35 AV1X/90000", "av1", 35},
		{"hevc", "49 50", "a=rtpmap:49 H265/90000\r\na=rtpmap:50 H264/90000", "hevc", 49},
		{"h265 alias", "49 50", "a=rtpmap:49 H265/90000\r\na=rtpmap:50 H264/90000", "h265", 49},
		{"wrong clock ignored", "50 51", "a=rtpmap:50 H264/8000\r\na=rtpmap:51 VP8/90000", "", 51},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NegotiatePublish(mustParse(t, videoOffer(tt.pts, tt.attrs)), Options{VideoCodec: tt.codec})
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Tracks[1].Codec.PT; got != tt.wantPT {
				t.Errorf("PT %d, want %d", got, tt.wantPT)
			}
		})
	}
}

func TestNegotiateUnsupported(t *testing.T) {
	appLine := "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sctp-port:5000\r\n"
	secondVideo := "\r\nm=video 9 UDP/TLS/RTP/SAVPF 106\r\na=mid:2\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:106 H264/90000"
	secondAudio := "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2"
	onlyApp := "v=0\r\na=group:BUNDLE 0\r\n" + appLine
	tests := []struct {
		name   string
		offer  string
		play   bool
		opt    Options
		reason string
	}{
		{"no BUNDLE", strings.Replace(curlOffer, "a=group:BUNDLE 0 1", "a=group:LS 0 1", 1), false, Options{}, "no BUNDLE group"},
		{"no rtcp-mux", strings.Replace(curlOffer, "a=rtcp-mux\r\na=rtpmap:106", "a=rtpmap:106", 1), false, Options{}, `m-line "1" without rtcp-mux`},
		{"no audio/video", onlyApp, false, Options{}, "no audio or video m-line"},
		{"data channel", curlOffer + "\r\n" + appLine, false, Options{}, "m=application (data channel) is not supported"},
		{"m=text", curlOffer + "\r\nm=text 9 RTP/AVP 98\r\na=mid:2\r\na=rtcp-mux\r\n", false, Options{}, "m=text is not supported"},
		{"publish recvonly", strings.Replace(curlOffer, "a=mid:1\r\na=sendonly", "a=mid:1\r\na=recvonly", 1), false, Options{}, `publish offer has recvonly m-line "1"`},
		{"play sendonly", curlOffer, true, Options{}, `play offer has sendonly m-line "0"`},
		{"no supported audio codec", strings.Replace(curlOffer, "opus/48000/2", "G722/8000", 1), false, Options{}, `no supported codec in audio m-line "0"`},
		{"no supported video codec", strings.Replace(curlOffer, "H264/90000", "H263/90000", 1), false, Options{}, `no supported codec in video m-line "1"`},
		{"codec=hevc without H265", curlOffer, false, Options{VideoCodec: "hevc"}, `no supported codec in video m-line "1"`},
		{"codec=h264 without H264", videoOffer("96", "a=rtpmap:96 VP8/90000"), false, Options{VideoCodec: "h264"}, "no supported codec"},
		{"acodec=pcmu without PCMU", curlOffer, false, Options{AudioCodec: "pcmu"}, `no supported codec in audio m-line "0"`},
		{"two video m-lines", curlOffer + secondVideo, false, Options{}, "more than one video m-line"},
		{"two audio m-lines", curlOffer + secondAudio, false, Options{}, "more than one audio m-line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := mustParse(t, tt.offer)
			var err error
			if tt.play {
				_, err = NegotiatePlay(o, DefaultStreamDesc(), tt.opt)
			} else {
				_, err = NegotiatePublish(o, tt.opt)
			}
			if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), tt.reason) || strings.Contains(err.Error(), "\n") {
				t.Errorf("reason %q, want %q", err, tt.reason)
			}
		})
	}
}

func TestNegotiateNilOffer(t *testing.T) {
	if _, err := NegotiatePublish(nil, Options{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("publish nil: %v", err)
	}
	if _, err := NegotiatePlay(&Offer{}, DefaultStreamDesc(), Options{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("play empty: %v", err)
	}
}

func TestNegotiatePlayChrome(t *testing.T) {
	h264 := func(fmtp string) *Codec { return &Codec{Name: "H264", PT: 125, ClockRate: 90000, Fmtp: fmtp} }
	opus := &Codec{Name: "opus", PT: 100, ClockRate: 48000, Channels: 2}
	tests := []struct {
		name    string
		video   *Codec
		wantPT  uint8
		wantErr bool
	}{
		{"default stream: 42e01f pm1", DefaultStreamDesc().Video, 106, false},
		{"baseline pm1", h264("packetization-mode=1;profile-level-id=42001f"), 102, false},
		{"baseline pm0", h264("profile-level-id=42001f"), 104, false},
		{"main pm1", h264("packetization-mode=1;profile-level-id=4d001f"), 127, false},
		{"high pm1 (OBS)", h264("packetization-mode=1;profile-level-id=640c1f"), 112, false},
		{"constrained high falls to high", h264("packetization-mode=1;profile-level-id=640c34"), 112, false},
		{"no fmtp = baseline pm0", h264(""), 104, false},
		{"VP8", &Codec{Name: "VP8", PT: 96, ClockRate: 90000}, 96, false},
		{"VP9 profile 2", &Codec{Name: "VP9", PT: 40, ClockRate: 90000, Fmtp: "profile-id=2"}, 100, false},
		{"VP9 no fmtp = profile 0", &Codec{Name: "VP9", PT: 40, ClockRate: 90000}, 98, false},
		{"AV1", &Codec{Name: "AV1", PT: 41, ClockRate: 90000}, 45, false},
		{"H265 not offered", &Codec{Name: "H265", PT: 49, ClockRate: 90000}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NegotiatePlay(mustParse(t, chromePlayOffer(t)), StreamDesc{Audio: opus, Video: tt.video}, allOn)
			if tt.wantErr {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("err = %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Tracks) != 2 || n.Tracks[0].Codec.PT != 111 || n.Tracks[1].Codec.PT != tt.wantPT {
				t.Fatalf("tracks %+v", n.Tracks)
			}
			if n.Tracks[1].SSRC != 0 || !n.Play || n.lines[1].dir != DirSendOnly {
				t.Errorf("play track %+v", n.Tracks[1])
			}
		})
	}
}

func TestNegotiatePlayAudioOnlyStream(t *testing.T) {
	s := DefaultStreamDesc()
	s.Video = nil
	n, err := NegotiatePlay(mustParse(t, chromePlayOffer(t)), s, allOn)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Tracks) != 1 || n.Tracks[0].Kind != KindAudio {
		t.Fatalf("tracks %+v", n.Tracks)
	}
	if len(n.lines) != 2 || n.lines[1].dir != DirInactive {
		t.Fatalf("lines %+v", n.lines)
	}
}

func TestNegotiateInactiveOfferLine(t *testing.T) {
	o := mustParse(t, strings.Replace(curlOffer, "a=mid:1\r\na=sendonly", "a=mid:1\r\na=inactive", 1))
	n, err := NegotiatePublish(o, allOn)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Tracks) != 1 || n.lines[1].dir != DirInactive {
		t.Fatalf("tracks %+v lines %+v", n.Tracks, n.lines)
	}
}

func TestH264Profiles(t *testing.T) {
	tests := map[string]h264Profile{
		"42e01f": h264ConstrainedBaseline, "42c01f": h264ConstrainedBaseline, "4d801f": h264ConstrainedBaseline,
		"58c01f": h264ConstrainedBaseline, "42001f": h264Baseline, "58801f": h264Baseline,
		"4d001f": h264Main, "58001f": h264Extended, "64001f": h264High, "640c1f": h264ConstrainedHigh,
		"6e001f": h264High10, "7a001f": h264High422, "f4001f": h264High444, "zz": h264Unknown, "010203": h264Unknown,
	}
	for plid, want := range tests {
		if got := h264ProfileOf(plid); got != want {
			t.Errorf("%s: %d, want %d", plid, got, want)
		}
	}
	if !h264Decodes(h264High, h264ConstrainedBaseline) || h264Decodes(h264Baseline, h264Main) ||
		h264Decodes(h264Unknown, h264Unknown) || !h264Decodes(h264High10, h264High) {
		t.Error("h264Decodes")
	}
}
