package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

var annexB = []byte{0, 0, 0, 1}

// testPublisher is a pion WHIP publisher of H.264 + Opus files.
type testPublisher struct {
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	res          whipResult

	// unique adds an SEI NAL with a running number to every access unit,
	// so that units of a looped file hash apart (the soak test).
	unique bool
	tag    int

	mu       sync.Mutex
	sent     [][32]byte // hash of every access unit, in order
	opusSent int
}

func newTestPublisher(t testing.TB, srv *Server, query string) *testPublisher {
	t.Helper()
	return newTestPublisherOn(t, srv.url("/rtc/v1/whip/?"+query), webrtc.NetworkTypeUDP4)
}

// newTestPublisherOn publishes to a full WHIP URL over one network type.
func newTestPublisherOn(t testing.TB, whipURL string, nt webrtc.NetworkType) *testPublisher {
	t.Helper()
	return newTestPublisherPC(t, whipURL, newPeerOn(t, nt))
}

// newTestPublisherPC publishes to a full WHIP URL from pc.
func newTestPublisherPC(t testing.TB, whipURL string, pc *webrtc.PeerConnection) *testPublisher {
	t.Helper()
	p := &testPublisher{pc: pc}
	var err error
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "fanout-test")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "fanout-test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.audio, p.video} {
		if _, err := p.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	p.res = exchange(t, p.pc, whipURL)
	waitConnected(t, p.pc, 5*time.Second)
	return p
}

// stream sends the files in real time until they end or ctx is done.
func (p *testPublisher) stream(ctx context.Context, t testing.TB, h264File, oggFile string) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.sendVideo(ctx, t, h264File) }()
	go func() { defer wg.Done(); p.sendAudio(ctx, t, oggFile) }()
	wg.Wait()
}

func (p *testPublisher) sendVideo(ctx context.Context, t testing.TB, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Error(err)
		return
	}
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Error(err)
			return
		}
		if nal.UnitType == h264reader.NalUnitTypeAUD || nal.UnitType == h264reader.NalUnitTypeFiller {
			continue // pion's payloader drops them (RFC 6184 allows it)
		}
		au = append(append(au, annexB...), nal.Data...)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if p.unique {
			// user_data_unregistered: a 16-byte UUID, then the number in
			// ASCII digits (no zero bytes, so no start code inside).
			p.tag++
			digits := []byte(strconv.Itoa(100000000 + p.tag))
			sei := append([]byte{0x06, 0x05, byte(16 + len(digits))}, []byte("fanout-soak-0001")...)
			au = append(append(append(au, annexB...), sei...), append(digits, 0x80)...)
		}
		p.mu.Lock()
		p.sent = append(p.sent, sha256.Sum256(au))
		p.mu.Unlock()
		if err := p.video.WriteSample(media.Sample{Data: au, Duration: time.Second / 30}); err != nil {
			t.Error(err)
			return
		}
		au = nil
	}
}

func (p *testPublisher) sendAudio(ctx context.Context, t testing.TB, file string) {
	f, err := os.Open(file)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Error(err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var granule uint64
	for {
		page, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Error(err)
			return
		}
		samples := hdr.GranulePosition - granule
		granule = hdr.GranulePosition
		if samples == 0 || samples > 48000 {
			continue // header pages
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := p.audio.WriteSample(media.Sample{Data: page, Duration: time.Duration(samples) * time.Second / 48000}); err != nil {
			t.Error(err)
			return
		}
		p.mu.Lock()
		p.opusSent++
		p.mu.Unlock()
	}
}

func (p *testPublisher) sentAUs() [][32]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][32]byte(nil), p.sent...)
}

// testPlayer is a pion WHEP player that reassembles H.264 access units.
type testPlayer struct {
	pc  *webrtc.PeerConnection
	res whipResult

	mu       sync.Mutex
	aus      [][32]byte
	opus     int
	firstKey time.Time
	ssrcs    map[uint32]bool
}

func newTestPlayer(t testing.TB, srv *Server, query string) *testPlayer {
	t.Helper()
	return newTestPlayerOn(t, srv.url("/rtc/v1/whep/?"+query), webrtc.NetworkTypeUDP4)
}

// newTestPlayerOn plays a full WHEP URL over one network type.
func newTestPlayerOn(t testing.TB, whepURL string, nt webrtc.NetworkType) *testPlayer {
	t.Helper()
	return newTestPlayerPC(t, whepURL, newPeerOn(t, nt))
}

// newTestPlayerPC plays a full WHEP URL on pc.
func newTestPlayerPC(t testing.TB, whepURL string, pc *webrtc.PeerConnection) *testPlayer {
	t.Helper()
	p := &testPlayer{pc: pc, ssrcs: map[uint32]bool{}}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			p.readAudio(tr)
			return
		}
		p.readVideo(tr)
	})
	p.res = exchange(t, p.pc, whepURL)
	waitConnected(t, p.pc, 5*time.Second)
	return p
}

func (p *testPlayer) readAudio(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.opus++
		p.ssrcs[pkt.SSRC] = true
		p.mu.Unlock()
	}
}

func (p *testPlayer) readVideo(tr *webrtc.TrackRemote) {
	var dep codecs.H264Packet
	var au []byte
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		nals, err := dep.Unmarshal(pkt.Payload)
		if err == nil {
			au = append(au, nals...)
		}
		if !pkt.Marker {
			continue
		}
		p.mu.Lock()
		p.ssrcs[pkt.SSRC] = true
		p.aus = append(p.aus, sha256.Sum256(au))
		if p.firstKey.IsZero() && len(au) > 4 && au[4]&0x1f == 7 {
			p.firstKey = time.Now()
		}
		p.mu.Unlock()
		au = nil
	}
}

func (p *testPlayer) received() ([][32]byte, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][32]byte(nil), p.aus...), p.opus
}
