package relay

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/fastpath/route"
)

const answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=FanoutPlaySession\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n" +
	"a=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:1001 cname:x\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n" +
	"a=rtpmap:103 VP8/90000\r\na=rtpmap:102 h264/90000\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=ssrc:2002 cname:x\r\na=ssrc:2002 msid:a b\r\n"

// TestTracksOf: the owner's answer becomes the virtual publisher's tracks:
// the first payload type of each accepted m-line, canonical codec names.
func TestTracksOf(t *testing.T) {
	a, v, err := tracksOf(answer)
	if err != nil {
		t.Fatal(err)
	}
	if a == nil || a.SSRC != 1001 || a.Codec.Name != "opus" || a.Codec.PT != 111 || a.Codec.ClockRate != 48000 ||
		a.Codec.Channels != 2 || a.Codec.Fmtp != "minptime=10;useinbandfec=1" {
		t.Errorf("audio: %+v", a)
	}
	if v == nil || v.SSRC != 2002 || v.Codec.Name != "H264" || v.Codec.PT != 102 || v.Codec.ClockRate != 90000 ||
		v.Codec.Fmtp != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" {
		t.Errorf("video: %+v", v)
	}
	for name, bad := range map[string]string{
		"garbage":  "not sdp",
		"rejected": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 0 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\na=ssrc:1 cname:x\r\n",
		"no ssrc":  "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n",
	} {
		if _, _, err := tracksOf(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type mapLocator map[string]string

func (l mapLocator) Locate(_ context.Context, _, _, stream string) (string, bool, error) {
	if stream == "broken" {
		return "", false, errors.New("registry down")
	}
	u, ok := l[stream]
	return u, ok, nil
}

// noHost fails the test if a relay touches it.
type noHost struct{ t *testing.T }

func (h noHost) OpenVirtual(string, string, string, *control.VirtualTrack, *control.VirtualTrack) (*control.VirtualPublisher, error) {
	h.t.Error("OpenVirtual called")
	return nil, errors.New("no")
}
func (h noHost) Players(string, string, string) int       { return 0 }
func (h noHost) HasPublisher(string, string, string) bool { return false }
func (h noHost) Inject(route.SessionID, []byte) bool      { h.t.Error("Inject called"); return false }

// TestPullLocal: streams nobody else owns open no relay; a Locator error
// refuses the play.
func TestPullLocal(t *testing.T) {
	g0 := runtime.NumGoroutine()
	defer noLeak(t, g0)
	m, err := New(Config{Locator: mapLocator{"mine": "http://self", "refused": "http://127.0.0.1:1"},
		Host: noHost{t}, Self: "http://self", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, s := range []string{"mine", "nobody"} {
		if err := m.Pull(ctx, "v", "live", s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if err := m.Pull(ctx, "v", "live", "broken"); err == nil {
		t.Error("a Locator error was not returned")
	}
	// An owner that refuses the connection: the first dial fails, Pull
	// says so, and the relay is gone.
	if err := m.Pull(ctx, "v", "live", "refused"); err == nil {
		t.Error("a failed first dial was not returned")
	}
	if st := m.Stats(); st.Open != 0 || st.Opened != 1 || st.Failures != 1 || st.LocateErrors != 1 {
		t.Errorf("stats: %+v", st)
	}
}

// noLeak fails if goroutines stay above g0 (those a relay started).
func noLeak(t *testing.T, g0 int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > g0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d, started with %d\n%s", runtime.NumGoroutine(), g0, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
