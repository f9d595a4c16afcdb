package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// svcTIDs is the L1T3 pattern of temporal layer ids, one per frame.
var svcTIDs = [4]uint8{0, 2, 1, 2}

// layerSent is one packet a tlPublisher sent: its temporal id, payload
// and header extension (AV1's dependency descriptor; none for VP9).
type layerSent struct {
	tid          uint8
	payload, ext []byte
}

// tlPublisher is a pion WHIP publisher of synthetic L1T3 frames of two
// packets at 30 fps: packet(f, k) is packet k of frame f, and its ext,
// when extID is set, goes under that header extension id.
type tlPublisher struct {
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	packet func(f, k int) layerSent
	extID  uint8
	mu     sync.Mutex
	sent   []layerSent
}

// newTLPublisher publishes a mime track from pc; with extURI, the answer
// must have negotiated that header extension (extID is its id).
func newTLPublisher(t testing.TB, srv *Server, query string, pc *webrtc.PeerConnection, mime, extURI string,
	packet func(f, k int) layerSent) *tlPublisher {
	t.Helper()
	p := &tlPublisher{pc: pc, packet: packet}
	t.Cleanup(func() { _ = p.pc.Close() })
	var err error
	p.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime}, "video", "fanout-svc")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := p.pc.AddTransceiverFromTrack(p.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	exchangeHdr(t, p.pc, srv.url("/rtc/v1/whip/?"+query))
	if extURI != "" {
		for _, e := range tr.Sender().GetParameters().HeaderExtensions {
			if e.URI == extURI {
				p.extID = uint8(e.ID)
			}
		}
		if p.extID == 0 {
			t.Fatalf("the WHIP answer negotiated no %s", extURI)
		}
	}
	waitConnected(t, p.pc, 5*time.Second)
	return p
}

// newSVCPublisher publishes VP9 L1T3 frames (svcPayload).
func newSVCPublisher(t testing.TB, srv *Server, query string) *tlPublisher {
	t.Helper()
	return newTLPublisher(t, srv, query, newPeer(t), webrtc.MimeTypeVP9, "", func(f, k int) layerSent {
		return layerSent{tid: svcTIDs[f%4], payload: svcPayload(f, k)}
	})
}

// svcPayload is packet k of 2 of frame f.
func svcPayload(f, k int) []byte {
	tid := svcTIDs[f%4]
	b := make([]byte, 9, 200)
	b[0] = 0x80 | 0x20 // I, L
	if f%60 != 0 {
		b[0] |= 0x40 // P: inter-predicted
	}
	if k == 0 {
		b[0] |= 0x08 // B
	} else {
		b[0] |= 0x04 // E
	}
	b[1] = byte(f & 0x7f)
	b[2] = tid<<5 | 0x10 // TID, U
	b[3] = byte(f / 4)   // TL0PICIDX
	binary.BigEndian.PutUint32(b[4:], uint32(f))
	b[8] = byte(k)
	for i := len(b); i < cap(b); i++ {
		b = append(b, byte(i*f))
	}
	return b
}

func (p *tlPublisher) stream(ctx context.Context) {
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	seq := uint16(65000)
	for f := 0; ; f++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for k := range 2 {
			s := p.packet(f, k)
			p.mu.Lock()
			p.sent = append(p.sent, s)
			p.mu.Unlock()
			h := rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(f) * 3000, Marker: k == 1}
			if p.extID != 0 {
				h.Extension, h.ExtensionProfile = true, 0x1000
				_ = h.SetExtension(p.extID, s.ext)
			}
			seq++
			if err := p.track.WriteRTP(&rtp.Packet{Header: h, Payload: s.payload}); err != nil {
				return
			}
		}
	}
}

// start streams in the background until stop, which waits for the
// stream to end (and runs at the test's end too).
func (p *tlPublisher) start(t testing.TB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.stream(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// sentUpTo is what the publisher sent of temporal layers 0…tid.
func (p *tlPublisher) sentUpTo(tid uint8) []layerSent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []layerSent
	for _, s := range p.sent {
		if s.tid <= tid {
			out = append(out, s)
		}
	}
	return out
}

// TestSVCTemporal: a VP9 L1T3 publisher (TIDs 0, 2, 1, 2); players with
// ?temporal=0, ?temporal=1 and none get exactly the packets of their
// temporal layers, byte-exact and with consecutive sequence numbers; one
// more player is capped live by the WHEP layer extension's
// temporalLayerId.
func TestSVCTemporal(t *testing.T) {
	srv := startTestServer(t, "")
	q := "app=live&stream=svc"
	pub := newSVCPublisher(t, srv, q+"&codec=vp9")
	stop := pub.start(t)
	time.Sleep(300 * time.Millisecond)
	players := []*rtpPlayer{newRTPPlayer(t, srv, q+"&temporal=0"), newRTPPlayer(t, srv, q+"&temporal=1"), newRTPPlayer(t, srv, q)}
	live := newRTPPlayer(t, srv, q)
	time.Sleep(1500 * time.Millisecond)
	live.selectTemporal(t, srv, 0)
	time.Sleep(1500 * time.Millisecond)
	stop()
	time.Sleep(200 * time.Millisecond)

	for i, tid := range []uint8{0, 1, 2} {
		got := players[i].received()
		checkRun(t, "", tid, got, 0, pub.sentUpTo(tid))
		checkContinuous(t, "temporal player", got)
		t.Logf("temporal<=%d: %d packets, byte-exact, seq continuous", tid, len(got))
	}
	got := live.received()
	checkContinuous(t, "live-capped player", got)
	var hi int
	for i, pk := range got {
		if pk.Payload[2]>>5 != 0 {
			hi = i
		}
	}
	// 1.5 s of TID 0 alone is about 11 frames of 2 packets.
	if hi == 0 || len(got)-hi-1 < 16 {
		t.Fatalf("live-capped player: last packet above TID 0 at %d of %d, want the last 1.5 s TID 0 only", hi, len(got))
	}
	checkRun(t, "", 0, got[hi+1:], 0, pub.sentUpTo(0))
	t.Logf("live-capped player: %d packets of all layers, then %d of TID 0 only", hi+1, len(got)-hi-1)
}

// checkRun checks that got is a contiguous run of sent: payloads, and
// with extID the header extensions under that id (the player's) too.
func checkRun(t *testing.T, label string, tid uint8, got []rtp.Packet, extID uint8, sent []layerSent) {
	t.Helper()
	if len(got) < 20 {
		t.Fatalf("%sTID<=%d: only %d packets", label, tid, len(got))
	}
	start := -1
	for i, s := range sent {
		if bytes.Equal(s.payload, got[0].Payload) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%sTID<=%d: first packet not among those sent", label, tid)
	}
	for i, pk := range got {
		if start+i >= len(sent) || !bytes.Equal(pk.Payload, sent[start+i].payload) ||
			extID != 0 && !bytes.Equal(pk.GetExtension(extID), sent[start+i].ext) {
			t.Fatalf("%sTID<=%d: packet %d (seq %d, payload %x…, extension %x) differs from the %dth sent of those layers", label, tid, i,
				pk.SequenceNumber, pk.Payload[:min(9, len(pk.Payload))], pk.GetExtension(extID), start+i)
		}
	}
}
