package node

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// Helpers of the media-quality tests (issue 3): pion peers with pion's
// default interceptors (NACK responder and generator, RTCP reports,
// transport-cc), a player that records every RTP packet and reassembles
// access units afterwards (an unbounded jitter buffer), and H.264 files
// with a chosen GOP.

// qualityPeer is a pion PeerConnection with the default interceptors,
// gathering on ip (a namespace's veth address) or on loopback when ip is
// not valid. Its SRTP replay window is 1024 packets, as Chrome's for video:
// a retransmission may arrive well after newer packets.
func qualityPeer(t testing.TB, ip netip.Addr) *webrtc.PeerConnection {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetSRTPReplayProtectionWindow(1024)
	if ip.IsValid() {
		se.SetIPFilter(func(a net.IP) bool { return a.Equal(net.IP(ip.AsSlice())) })
	} else {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(a net.IP) bool { return a.IsLoopback() })
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	// Publishers stamp transport-wide sequence numbers, as browsers do.
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(ir)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// newQualityPublisher publishes H.264 + Opus over pc to whipURL.
func newQualityPublisher(t testing.TB, pc *webrtc.PeerConnection, whipURL string) *testPublisher {
	t.Helper()
	p := &testPublisher{pc: pc}
	var err error
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "fanout-quality")
	if err != nil {
		t.Fatal(err)
	}
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "fanout-quality")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.audio, p.video} {
		tc, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		go drainRTCP(tc.Sender().Read) // the interceptors (NACK responder…) see RTCP only when it is read
	}
	p.res = exchange(t, pc, whipURL)
	waitConnected(t, pc, 15*time.Second)
	return p
}

// recPacket is one RTP packet as a player received it.
type recPacket struct {
	seq    uint16
	ts     uint32
	marker bool
	at     time.Time
	data   []byte // payload
}

// recPlayer is a WHEP player that records every packet it receives.
type recPlayer struct {
	pc   *webrtc.PeerConnection
	res  whipResult
	post time.Time // when the WHEP exchange began
	conn time.Time // when ICE and DTLS were done

	mu    sync.Mutex
	video []recPacket
	audio []recPacket
}

// newRecPlayer plays whepURL over pc.
func newRecPlayer(t testing.TB, pc *webrtc.PeerConnection, whepURL string) *recPlayer {
	t.Helper()
	p := &recPlayer{pc: pc}
	addRecvonly(t, pc)
	pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		go drainRTCP(rcv.Read) // SRs reach the report interceptor only when read
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			r := recPacket{seq: pkt.SequenceNumber, ts: pkt.Timestamp, marker: pkt.Marker, at: time.Now(),
				data: bytes.Clone(pkt.Payload)}
			p.mu.Lock()
			if video {
				p.video = append(p.video, r)
			} else {
				p.audio = append(p.audio, r)
			}
			p.mu.Unlock()
		}
	})
	p.post = time.Now()
	p.res = exchange(t, pc, whepURL)
	waitConnected(t, pc, 15*time.Second)
	p.conn = time.Now()
	return p
}

// drainRTCP reads RTCP until the reader fails (its peer closed).
func drainRTCP(read func([]byte) (int, interceptor.Attributes, error)) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := read(buf); err != nil {
			return
		}
	}
}

// packets returns a copy of the recorded packets of one kind.
func (p *recPlayer) packets(video bool) []recPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	if video {
		return append([]recPacket(nil), p.video...)
	}
	return append([]recPacket(nil), p.audio...)
}

// accessUnits reassembles the H.264 access units received, in sequence
// order whatever the arrival order, once per sequence number: the packets
// of one RTP timestamp, contiguous and ending with the marker. It returns
// the hash of every complete unit and when its last packet arrived.
func (p *recPlayer) accessUnits() (hashes map[[32]byte]time.Time) {
	pkts := p.packets(true)
	byExt := map[int64]recPacket{}
	var highest int64
	for i, r := range pkts {
		ext := int64(r.seq)
		if i > 0 {
			ext = highest + int64(int16(r.seq-uint16(highest)))
		}
		if i == 0 || ext > highest {
			highest = ext
		}
		if _, dup := byExt[ext]; !dup {
			byExt[ext] = r
		}
	}
	exts := make([]int64, 0, len(byExt))
	for e := range byExt {
		exts = append(exts, e)
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i] < exts[j] })
	hashes = map[[32]byte]time.Time{}
	for i := 0; i < len(exts); {
		j := i
		for j+1 < len(exts) && byExt[exts[j+1]].ts == byExt[exts[i]].ts {
			j++
		}
		if exts[j]-exts[i] == int64(j-i) && byExt[exts[j]].marker {
			var dep codecs.H264Packet
			var au []byte
			var last time.Time
			for k := i; k <= j; k++ {
				r := byExt[exts[k]]
				if nals, err := dep.Unmarshal(r.data); err == nil {
					au = append(au, nals...)
				}
				last = maxTime(last, r.at)
			}
			hashes[sha256.Sum256(au)] = last
		}
		i = j + 1
	}
	return hashes
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// delivered is the share (percent) of sent access units a player
// reassembled byte-exact.
func delivered(sent [][32]byte, got map[[32]byte]time.Time) float64 {
	if len(sent) == 0 {
		return 0
	}
	n := 0
	for _, h := range sent {
		if _, ok := got[h]; ok {
			n++
		}
	}
	return 100 * float64(n) / float64(len(sent))
}

// firstKeyframe is when the first packet of an access unit carrying an SPS
// (alone or in a STAP-A, RFC 6184 §5.7.1) arrived: the first decodable frame.
func (p *recPlayer) firstKeyframe() time.Time {
	for _, r := range p.packets(true) {
		if len(r.data) > 3 && (r.data[0]&0x1f == 7 || r.data[0]&0x1f == 24 && r.data[3]&0x1f == 7) {
			return r.at
		}
	}
	return time.Time{}
}

// gopMedia makes, in t's temporary directory, an H.264 file with one IDR
// every gop frames (30 fps) and an Opus file, of the given seconds.
func gopMedia(t testing.TB, gop, seconds int) (h264, ogg string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ffmpeg %v: %v: %s", args, err, stderr.String())
		}
	}
	dur := fmt.Sprint(seconds)
	h264 = filepath.Join(dir, "v.h264")
	ogg = filepath.Join(dir, "a.ogg")
	run("-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", dur,
		"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-bf", "0", "-g", fmt.Sprint(gop),
		"-keyint_min", fmt.Sprint(gop), "-sc_threshold", "0",
		"-pix_fmt", "yuv420p", "-x264-params", "slices=1", "-f", "h264", h264)
	run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", dur,
		"-c:a", "libopus", "-b:a", "48k", "-page_duration", "20000", "-f", "ogg", ogg)
	if _, err := os.Stat(h264); err != nil {
		t.Fatal(err)
	}
	return h264, ogg
}
