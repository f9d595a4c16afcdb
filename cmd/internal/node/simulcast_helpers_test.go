package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simRIDs are the test publisher's layers, highest first.
var simRIDs = []string{"h", "m", "l"}

// simPublisher is a pion WHIP publisher of one VP8 track in three
// simulcast encodings (RIDs h, m, l) of synthetic frames: every payload
// names its layer, frame and packet, so a player's bytes say where they
// came from. A layer answers a PLI on its SSRC with a keyframe.
type simPublisher struct {
	pc         *webrtc.PeerConnection
	sender     *webrtc.RTPSender
	tracks     []*webrtc.TrackLocalStaticRTP
	midID, rid uint8
	mid        string
	mu         sync.Mutex
	sent       [3][][]byte // payloads per layer, in order
	pli        [3]bool     // a PLI is pending
	plis       [3]int
}

// newSimulcastPeer is newPeer with the simulcast header extensions.
func newSimulcastPeer(t testing.TB) *webrtc.PeerConnection {
	t.Helper()
	pc := newPeerWith(t, peerOptions{media: webrtc.ConfigureSimulcastExtensionHeaders})
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func newSimPublisher(t testing.TB, srv *Server, query string) *simPublisher {
	t.Helper()
	p := &simPublisher{pc: newSimulcastPeer(t)}
	for _, rid := range simRIDs {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "fanout-sim",
			webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		p.tracks = append(p.tracks, tr)
	}
	tc, err := p.pc.AddTransceiverFromTrack(p.tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	p.sender = tc.Sender()
	for _, tr := range p.tracks[1:] {
		if err := p.sender.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := exchangeHdr(t, p.pc, srv.url("/rtc/v1/whip/?"+query))
	if !bytes.Contains([]byte(res), []byte("a=simulcast:recv h;m;l")) {
		t.Fatalf("answer has no simulcast:\n%s", res)
	}
	waitConnected(t, p.pc, 5*time.Second)
	for _, e := range p.sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			p.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			p.rid = uint8(e.ID)
		}
	}
	if p.midID == 0 || p.rid == 0 {
		t.Fatalf("mid/rid extensions not negotiated: %+v", p.sender.GetParameters().HeaderExtensions)
	}
	p.mid = tc.Mid()
	for l, rid := range simRIDs {
		go p.readRTCP(l, rid)
	}
	return p
}

// readRTCP notes PLIs the server sends layer l.
func (p *simPublisher) readRTCP(l int, rid string) {
	for {
		pkts, _, err := p.sender.ReadSimulcastRTCP(rid)
		if err != nil {
			return
		}
		for _, pk := range pkts {
			if _, ok := pk.(*rtcp.PictureLossIndication); ok {
				p.mu.Lock()
				p.pli[l] = true
				p.plis[l]++
				p.mu.Unlock()
			}
		}
	}
}

// simPayload is packet k of n of frame f of layer l: a VP8 payload
// descriptor (S on the first packet, RFC 7741 §4.2), on the first packet
// the payload header's P bit (0 = key frame, §4.3), then the layer, frame
// and packet ids and filler.
func simPayload(l, f, k int, key bool) []byte {
	b := make([]byte, 8, 8+300-100*l)
	if k == 0 {
		b[0] = 0x10
		b[1] = 0x01
		if key {
			b[1] = 0x00
		}
	} else {
		b[1] = 0xff
	}
	b[2] = byte(l)
	binary.BigEndian.PutUint32(b[3:], uint32(f))
	b[7] = byte(k)
	for i := len(b); i < cap(b); i++ {
		b = append(b, byte(i+f))
	}
	return b
}

// isKeyStart reports a simPayload that starts a key frame.
func isKeyStart(b []byte) bool { return len(b) > 2 && b[0]&0x10 != 0 && b[1]&0x01 == 0 }

// stream sends 30 frames a second until ctx ends: layer l's frames have
// 3-l packets, a keyframe every 3 s or after a PLI; each layer has its own
// seq and timestamp bases.
func (p *simPublisher) stream(ctx context.Context, t testing.TB) {
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	seq := [3]uint16{100, 30000, 65500}
	tsBase := [3]uint32{1000, 2_000_000_000, 4_294_000_000}
	for f := 0; ; f++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for l, tr := range p.tracks {
			p.mu.Lock()
			key := f%90 == 0 || p.pli[l]
			p.pli[l] = false
			p.mu.Unlock()
			n := 3 - l
			for k := range n {
				h := rtp.Header{Version: 2, SequenceNumber: seq[l], Timestamp: tsBase[l] + uint32(f)*3000, Marker: k == n-1}
				seq[l]++
				if err := h.SetExtension(p.midID, []byte(p.mid)); err != nil {
					t.Error(err)
					return
				}
				if err := h.SetExtension(p.rid, []byte(simRIDs[l])); err != nil {
					t.Error(err)
					return
				}
				pl := simPayload(l, f, k, key)
				p.mu.Lock()
				p.sent[l] = append(p.sent[l], pl)
				p.mu.Unlock()
				if err := tr.WriteRTP(&rtp.Packet{Header: h, Payload: pl}); err != nil {
					return
				}
			}
		}
	}
}

func (p *simPublisher) sentLayer(l int) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent[l]...)
}

// rtpPlayer is a pion WHEP player that keeps every video packet.
type rtpPlayer struct {
	pc       *webrtc.PeerConnection
	location string
	layerURL string
	mu       sync.Mutex
	pkts     []rtp.Packet
}

func newRTPPlayer(t testing.TB, srv *Server, query string) *rtpPlayer {
	t.Helper()
	p := &rtpPlayer{pc: newPeer(t)}
	t.Cleanup(func() { _ = p.pc.Close() })
	p.play(t, srv, query, p.keepVideo)
	return p
}

// play runs p's WHEP exchange with onTrack as its track handler, notes the
// Location and the layer extension's Link, and waits until connected.
func (p *rtpPlayer) play(t testing.TB, srv *Server, query string, onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) {
	t.Helper()
	addRecvonly(t, p.pc)
	p.pc.OnTrack(onTrack)
	_, hdr := exchangeHdr(t, p.pc, srv.url("/rtc/v1/whep/?"+query))
	p.location = hdr.Get("Location")
	for _, l := range hdr.Values("Link") {
		if m := linkRe.FindStringSubmatch(l); m != nil && m[2] == "urn:ietf:params:whep:ext:core:layer" {
			p.layerURL = m[1]
		}
	}
	waitConnected(t, p.pc, 5*time.Second)
}

// keepVideo, a track handler, keeps every packet of a video track.
func (p *rtpPlayer) keepVideo(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if tr.Kind() != webrtc.RTPCodecTypeVideo {
		return
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.pkts = append(p.pkts, *pkt)
		p.mu.Unlock()
	}
}

var linkRe = regexp.MustCompile(`^<([^>]+)>;\s*rel="([^"]+)"`)

func (p *rtpPlayer) received() []rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rtp.Packet(nil), p.pkts...)
}

// selectLayer posts the WHEP layer extension's JSON.
func (p *rtpPlayer) selectLayer(t testing.TB, srv *Server, rid string) {
	t.Helper()
	if p.layerURL == "" {
		t.Fatal("the WHEP answer has no layer Link")
	}
	code, _, body := httpDo(t, http.MethodPost, srv.url(p.layerURL), map[string]string{"Content-Type": "application/json"},
		`{"encodingId":"`+rid+`"}`)
	if code != http.StatusOK {
		t.Fatalf("layer %s: %d %s", rid, code, body)
	}
}

// selectTemporal posts the WHEP layer extension's temporalLayerId.
func (p *rtpPlayer) selectTemporal(t testing.TB, srv *Server, tid int) {
	t.Helper()
	code, _, body := httpDo(t, http.MethodPost, srv.url(p.layerURL), map[string]string{"Content-Type": "application/json"},
		fmt.Sprintf(`{"temporalLayerId":%d}`, tid))
	if code != http.StatusOK {
		t.Fatalf("temporalLayerId: %d %s", code, body)
	}
}

// exchangeHdr is exchange that also returns the 201's headers.
func exchangeHdr(t testing.TB, pc *webrtc.PeerConnection, url string) (string, http.Header) {
	t.Helper()
	sdpText, gathered := localOffer(t, pc)
	<-gathered
	status, hdr, body := post(t, url, "application/sdp", sdpText())
	if status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, status, body)
	}
	setAnswer(t, pc, body)
	return body, hdr
}

// checkLayerRun checks that pkts (all of one layer's segment) are a
// contiguous, byte-exact run of what the publisher sent on layer l.
func checkLayerRun(t testing.TB, name string, pkts []rtp.Packet, sent [][]byte, l int) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatalf("%s: no packets of layer %s", name, simRIDs[l])
	}
	start := -1
	for i, s := range sent {
		if bytes.Equal(s, pkts[0].Payload) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: first packet of layer %s was never sent on it", name, simRIDs[l])
	}
	for i, pk := range pkts {
		if start+i >= len(sent) || !bytes.Equal(sent[start+i], pk.Payload) {
			t.Fatalf("%s: packet %d of the layer-%s run differs from what was sent (from #%d)", name, i, simRIDs[l], start)
		}
	}
}

// layerRuns splits a player's packets by the layer its payloads name.
func layerRuns(pkts []rtp.Packet) (runs [][]rtp.Packet, layers []int) {
	for i, pk := range pkts {
		l := int(pk.Payload[2])
		if i == 0 || l != layers[len(layers)-1] {
			runs, layers = append(runs, nil), append(layers, l)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], pk)
	}
	return runs, layers
}

// checkContinuous checks one SSRC, seq +1 each packet and no timestamp going back.
func checkContinuous(t testing.TB, name string, pkts []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1], pkts[i]
		if b.SSRC != a.SSRC {
			t.Fatalf("%s: SSRC changed at packet %d", name, i)
		}
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("%s: seq %d after %d at packet %d", name, b.SequenceNumber, a.SequenceNumber, i)
		}
		if int32(b.Timestamp-a.Timestamp) < 0 {
			t.Fatalf("%s: timestamp %d after %d at packet %d", name, b.Timestamp, a.Timestamp, i)
		}
	}
}
