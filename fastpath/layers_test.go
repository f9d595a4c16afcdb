package fastpath

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
)

// simRIDExt is the rig's rtp-stream-id extension id.
const simRIDExt = 3

var simRIDs = [route.MaxLayers]byte{'h', 'm', 'l'}

// nextLayer encrypts the simulcast publisher's next packet of layer l:
// SSRC pubSSRC+l, its own sequence numbers, the RID in a one-byte header
// extension (RFC 8285 §4.2) as browsers send it, and a VP8 key frame start
// (RFC 7741 §4.2/§4.3) as payload so a player can join any packet.
func (r *rig) nextLayer(dst []byte, l int) []byte {
	r.seq++
	p := r.plain[:12+8+payloadSize-8]
	p[0], p[1] = 0x90, pubPT
	if r.marker {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], r.seq)
	binary.BigEndian.PutUint32(p[4:], uint32(r.seq)*3000)
	binary.BigEndian.PutUint32(p[8:], pubSSRC+uint32(l))
	copy(p[12:], []byte{0xbe, 0xde, 0, 1, simRIDExt << 4, simRIDs[l], 0, 0})
	p[20], p[21] = 0x10, 0x00
	binary.BigEndian.PutUint32(p[22:], uint32(r.seq))
	enc, err := r.pubCtx.EncryptRTP(dst[:0], p, &r.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// TestSimulcastFilter: six players on three layers of a simulcast
// publisher each get only their layer (read back and decrypted from their
// sockets, with their own SSRC), and the whole path allocates nothing.
func TestSimulcastFilter(t *testing.T) {
	const subs, layers = 6, 3
	r := newRig(t, rigOptions{cfg: Config{Cores: 1, GSO: true}, subs: subs, layers: layers})
	buf := make([]byte, 1500)
	for i := range 3 * layers {
		r.drive(0, r.nextLayer(buf, i%layers))
	}
	for i, s := range r.players {
		got := readLayers(t, r, s, i)
		if len(got) != 3 {
			t.Fatalf("player %d (layer %d): %d packets, want 3", i, i%layers, len(got))
		}
		for _, mark := range got {
			if int(mark-1)%layers != i%layers {
				t.Errorf("player %d (layer %d) got a packet of layer %d", i, i%layers, int(mark-1)%layers)
			}
		}
	}
	if s := r.e.Stats(); s.LayersLearnt != layers {
		t.Errorf("layers learnt %d, want %d", s.LayersLearnt, layers)
	}
	l := 0
	zeroAllocs(t, "simulcast publisher RTP → 6 players on 3 layers", func() {
		r.drive(0, r.nextLayer(buf, l))
		l = (l + 1) % layers
	})
	sl := &r.e.cores[0].sess[2]
	ps := r.e.table.Load().Session(2)
	zeroAllocs(t, "passLayer", func() {
		_ = r.e.cores[0].passLayer(ps, sl, 1, 1, 1, layers, r.plain[:40])
	})
}

// readLayers drains player i's socket and returns the publisher counter
// its packets carry (payload bytes 2..5), checking its SSRC.
func readLayers(t *testing.T, r *rig, s sink, i int) []uint32 {
	t.Helper()
	ctx, err := srtp.CreateContext(r.keys.LocalKey, r.keys.LocalSalt, r.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	b := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(s.fd, b, unix.MSG_DONTWAIT)
		if err != nil {
			return out
		}
		plain, err := ctx.DecryptRTP(nil, b[:n], nil)
		if err != nil {
			t.Fatalf("player %d: %v", i, err)
		}
		if ssrc := binary.BigEndian.Uint32(plain[8:]); ssrc != 0xa0000000+uint32(i) {
			t.Fatalf("player %d: SSRC %x", i, ssrc)
		}
		out = append(out, binary.BigEndian.Uint32(plain[14:]))
	}
}

// BenchmarkFanoutSimulcast is BenchmarkFanout (GCM, GSO) with the
// publisher sending layers simulcast encodings in turn and each player
// following one: layers=1 is a one-layer simulcast publisher, the
// baseline is BenchmarkFanout itself. Per egress packet, as it reports.
func BenchmarkFanoutSimulcast(b *testing.B) {
	for _, subs := range []int{12, 120, 1200} {
		for _, layers := range []int{1, 3} {
			b.Run(fmt.Sprintf("srtp=gcm/subs=%d/gso=true/layers=%d", subs, layers), func(b *testing.B) {
				benchFanout(b, gcm, subs, true, layers)
			})
		}
	}
}

// TestTapSimulcast: RTC→RTMP/HLS takes the highest layer: a simulcast
// publisher's tap gets layer h's packets and SRs, not the others'.
func TestTapSimulcast(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 0, layers: 3})
	tap := r.e.OpenTap(1, 1, 16)
	buf := make([]byte, 1500)
	for i := range 6 {
		r.drive(0, r.nextLayer(buf, i%3))
	}
	for range 2 {
		p, ok := tap.Next(nil)
		if !ok || p.SR || p.Kind != route.KindVideo || binary.BigEndian.Uint32(p.Data[8:]) != pubSSRC {
			t.Fatalf("tap gave %+v, %v", p, ok)
		}
	}
	if n := tap.Written(); n != 2 {
		t.Fatalf("tap got %d packets, want the 2 of layer h", n)
	}
	for _, ssrc := range []uint32{pubSSRC + 1, pubSSRC} {
		raw, _ := (&rtcp.SenderReport{SSRC: ssrc, NTPTime: 0xe1234567_80000000, RTPTime: ssrc}).Marshal()
		var rh rtcp.Header
		enc, err := r.pubCtx.EncryptRTCP(nil, raw, &rh)
		if err != nil {
			t.Fatal(err)
		}
		c := r.e.cores[0]
		c.begin()
		c.handle(enc, r.pub.addr)
		c.finish()
	}
	if p, ok := tap.Next(nil); !ok || !p.SR || p.RTPTime != pubSSRC || tap.Written() != 3 {
		t.Fatalf("sender report %+v, %v, written %d: want only layer h's", p, ok, tap.Written())
	}
	tap.Close()
}

// TestSimulcastCores: the layer filter on two running cores, players of
// every layer on both (the publisher's core hands the packets, with their
// layer, to the other through the rings).
func TestSimulcastCores(t *testing.T) {
	const subs, layers, packets = 6, 3, 60
	r := newRig(t, rigOptions{cfg: Config{Cores: 2, GSO: true}, subs: subs, layers: layers, rcvbuf: 1 << 20,
		playerCore: func(i int) int { return i % 2 }})
	r.e.Start()
	buf := make([]byte, 1500)
	for i := range packets {
		sendTo(t, r.pub.fd, r.e.Port(), r.nextLayer(buf, i%layers))
		if i%8 == 7 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitFor(t, func() bool {
		s := r.e.Stats()
		return s.TxPackets-s.PLIOut-s.RTCPOut >= subs*packets/layers
	})
	for i, s := range r.players {
		got := readLayers(t, r, s, i)
		if len(got) != packets/layers {
			t.Errorf("player %d (layer %d, core %d): %d packets, want %d", i, i%layers, i%2, len(got), packets/layers)
		}
		for _, mark := range got {
			if int(mark-1)%layers != i%layers {
				t.Fatalf("player %d (layer %d) got a packet of layer %d", i, i%layers, int(mark-1)%layers)
			}
		}
	}
}
