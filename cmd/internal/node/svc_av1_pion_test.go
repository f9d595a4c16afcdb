package node

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/fastpath/av1dd"
)

// av1L1T3Structure is the dependency descriptor's tail (after its three
// mandatory bytes) that attaches libwebrtc's L1T3 template structure:
// templates 0…4 of temporal ids 0, 0, 1, 2, 2 (fastpath/av1dd's tests
// build it bit by bit).
var av1L1T3Structure = []byte{0x80, 0x2, 0x14, 0xea, 0xa8, 0xe0, 0xc3, 0x4d, 0x14, 0x10, 0x20, 0x84, 0x27, 0x2, 0x7f, 0x1, 0xdf}

// newAV1Publisher publishes synthetic AV1 L1T3 frames (av1Packet), each
// packet with its dependency descriptor.
func newAV1Publisher(t testing.TB, srv *Server, query string) *tlPublisher {
	t.Helper()
	return newTLPublisher(t, srv, query, newDDPeer(t), webrtc.MimeTypeAV1, av1dd.URI, av1Packet)
}

// av1Packet is packet k of 2 of frame f: its temporal id, descriptor and
// payload (an aggregation header, the frame and packet numbers, filler);
// a key frame, with the template structure, every 30 frames.
func av1Packet(f, k int) layerSent {
	tid, tmpl := svcTIDs[f%4], [4]byte{1, 3, 2, 4}[f%4]
	if f%30 == 0 {
		tid, tmpl = 0, 0
	}
	dd := []byte{tmpl, byte(f >> 8), byte(f)}
	if k == 0 {
		dd[0] |= 0x80 // start of frame
	} else {
		dd[0] |= 0x40 // end of frame
	}
	if f%30 == 0 && k == 0 {
		dd = append(dd, av1L1T3Structure...)
	}
	pl := make([]byte, 6, 200)
	pl[0] = 0x10 // W=1: one OBU element
	if f%30 == 0 && k == 0 {
		pl[0] |= 0x08 // N: a new coded video sequence
	}
	binary.BigEndian.PutUint32(pl[1:], uint32(f))
	pl[5] = byte(k)
	for i := len(pl); i < cap(pl); i++ {
		pl = append(pl, byte(i*f))
	}
	return layerSent{tid: tid, payload: pl, ext: dd}
}

// TestSVCTemporalAV1: a pion AV1 L1T3 publisher with the dependency
// descriptor; players with ?temporal=0, ?temporal=1 and none get exactly
// the packets of their temporal layers, payload and descriptor byte for
// byte, with consecutive sequence numbers; one more, capped live by the
// WHEP layer extension, moves at a frame boundary (whole frames only);
// with keyframe_cache on, a capped player joining mid-GOP starts from the
// replayed key frame, whose descriptor carries the template structure.
func TestSVCTemporalAV1(t *testing.T) {
	srv := startTestServerConfig(t, strings.Replace(testConfig, "stun_timeout 30;", "stun_timeout 30; keyframe_cache on;", 1))
	q := "app=live&stream=svc-av1-pion"
	pub := newAV1Publisher(t, srv, q+"&codec=av1")
	stop := pub.start(t)
	time.Sleep(300 * time.Millisecond)
	qs := []string{q + "&temporal=0", q + "&temporal=1", q, q}
	players := make([]*ddPlayer, len(qs))
	for i, pq := range qs {
		players[i] = newDDPlayer(t, srv, pq)
	}
	time.Sleep(1500 * time.Millisecond)
	players[3].selectTemporal(t, srv, 0)
	late := newDDPlayer(t, srv, q+"&temporal=0") // mid-GOP: from the key frame the cache replays
	time.Sleep(1500 * time.Millisecond)
	stop()
	time.Sleep(200 * time.Millisecond)

	for i, tid := range []uint8{0, 1, 2} {
		got := players[i].received()
		checkAV1Run(t, tid, got, players[i].id, pub.sentUpTo(tid))
		checkContinuous(t, "AV1 temporal player", got)
		t.Logf("AV1 TID<=%d: %d packets, payloads and descriptors byte-exact, seq continuous", tid, len(got))
	}
	got := late.received()
	checkAV1Run(t, 0, got, late.id, pub.sentUpTo(0))
	checkContinuous(t, "AV1 late player", got)
	if dd := got[0].GetExtension(late.id); len(dd) <= 3 || dd[3]&0x80 == 0 {
		t.Fatalf("AV1 late player: first descriptor %x carries no template structure", dd)
	}
	t.Logf("AV1 late TID 0 player: %d packets from the replayed key frame's (frame %d) with the structure on",
		len(got), binary.BigEndian.Uint32(got[0].Payload[1:]))
	got = players[3].received()
	checkContinuous(t, "AV1 live-capped player", got)
	hi := 0
	for i, pk := range got {
		if f := int(binary.BigEndian.Uint32(pk.Payload[1:])); f%30 != 0 && svcTIDs[f%4] != 0 {
			hi = i
		}
	}
	if hi == 0 || len(got)-hi-1 < 16 || got[hi].Payload[5] != 1 {
		t.Fatalf("AV1 live-capped player: last packet above TID 0 at %d of %d (packet %d of its frame), want a whole frame, then 1.5 s of TID 0",
			hi, len(got), got[hi].Payload[5])
	}
	checkAV1Run(t, 0, got[hi+1:], players[3].id, pub.sentUpTo(0))
	t.Logf("AV1 live-capped player: %d packets of all layers, then %d of TID 0 only, switched at a frame boundary", hi+1, len(got)-hi-1)
}

// checkAV1Run checks that got is a contiguous run of sent, payloads and
// descriptors (under the player's id) alike.
func checkAV1Run(t *testing.T, tid uint8, got []rtp.Packet, id uint8, sent []layerSent) {
	t.Helper()
	if id == 0 {
		t.Fatalf("AV1 TID<=%d: %d packets, no descriptor id", tid, len(got))
	}
	checkRun(t, "AV1 ", tid, got, id, sent)
}
