package fastpath

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
	"github.com/fanout/fanout/fastpath/twcc"
)

// l1t3Structure is the dependency descriptor tail (after the 3 mandatory
// bytes) that attaches libwebrtc's L1T3 structure: templates 0…4 of
// temporal ids 0, 0, 1, 2, 2 (built by fastpath/av1dd's test writer).
var l1t3Structure = []byte{0x80, 0x2, 0x14, 0xea, 0xa8, 0xe0, 0xc3, 0x4d, 0x14, 0x10, 0x20, 0x84, 0x27, 0x2, 0x7f, 0x1, 0xdf}

// av1Frame is frame f's L1T3 temporal id and template (0 1 2 3 | 1 4 2 3…:
// a key frame, then T0, T2, T1, T2).
func av1Frame(f int) (tid, template uint8) {
	if f == 0 {
		return 0, 0
	}
	switch f % 4 {
	case 0:
		return 0, 1
	case 1:
		return 2, 3
	case 2:
		return 1, 2
	}
	return 2, 4
}

// av1DD is the dependency descriptor of packet k of 2 of frame f.
func av1DD(f, k int) []byte {
	_, tmpl := av1Frame(f)
	b := []byte{tmpl, byte(f >> 8), byte(f)}
	if k == 0 {
		b[0] |= 0x80
	} else {
		b[0] |= 0x40
	}
	if f == 0 && k == 0 {
		b = append(b, l1t3Structure...)
	}
	return b
}

// av1Plain is packet k of 2 of frame f with seq: its dependency
// descriptor under id ddID (two-byte header form) beside another extension,
// then the AV1 aggregation header and the seq as a counter.
func av1Plain(seq uint16, ddID uint8, f, k int) []byte {
	h := rtp.Header{Version: 2, PayloadType: pubPT, SequenceNumber: seq, Timestamp: uint32(f) * 3000,
		SSRC: pubSSRC, Marker: k == 1, Extension: true, ExtensionProfile: 0x1000}
	if err := h.SetExtension(ddID, av1DD(f, k)); err != nil {
		panic(err)
	}
	if err := h.SetExtension(ddID+1, []byte{1, 2, 3}); err != nil { // another one, stripped
		panic(err)
	}
	pl := make([]byte, 8)
	pl[0] = 0x10 // W=1
	binary.BigEndian.PutUint32(pl[4:], uint32(seq))
	p, err := (&rtp.Packet{Header: h, Payload: pl}).Marshal()
	if err != nil {
		panic(err)
	}
	return p
}

// encrypt encrypts the publisher's plaintext packet p into dst.
func (r *rig) encrypt(dst, p []byte) []byte {
	enc, err := r.pubCtx.EncryptRTP(dst[:0], p, &r.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// TestTemporalAV1: an AV1 L1T3 publisher with the dependency descriptor
// (id 9); players capped at TID 0 (without the descriptor negotiated),
// TIDs 0–1 (its id 5, one-byte form where it fits) and uncapped (id 20,
// two-byte form) get exactly their layers' packets with consecutive
// sequence numbers, and the descriptor, byte for byte, under their own id.
func TestTemporalAV1(t *testing.T) {
	ids := []uint8{0, 5, 20}
	caps := []uint8{1, 2, 0}
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 3, codec: route.CodecAV1, dd: 9,
		playerDD: func(i int) uint8 { return ids[i] }, temporal: func(i int) uint8 { return caps[i] }})
	buf := make([]byte, 1500)
	const frames = 12
	for f := range frames {
		for k := range 2 {
			r.seq++
			r.drive(0, r.encrypt(buf, av1Plain(r.seq, 9, f, k)))
		}
	}
	for i, s := range r.players {
		pkts := readAV1(t, r, s)
		var want []uint32
		for f := range frames {
			if tid, _ := av1Frame(f); caps[i] == 0 || tid < caps[i] {
				want = append(want, uint32(2*f+1), uint32(2*f+2))
			}
		}
		if len(pkts) != len(want) {
			t.Fatalf("player %d (cap %d) got %d packets, want %d", i, caps[i], len(pkts), len(want))
		}
		for j, pk := range pkts {
			n := binary.BigEndian.Uint32(pk.Payload[4:])
			if n != want[j] || j > 0 && pk.SequenceNumber != pkts[j-1].SequenceNumber+1 {
				t.Fatalf("player %d: packet %d is the publisher's %d seq %d, want %d with consecutive seqs", i, j, n, pk.SequenceNumber, want[j])
			}
			f, k := int(n-1)/2, int(n-1)%2
			dd := pk.GetExtension(ids[i])
			switch {
			case ids[i] == 0 && pk.Extension:
				t.Fatalf("player %d without the descriptor got extensions %v", i, pk.GetExtensionIDs())
			case ids[i] != 0 && !bytes.Equal(dd, av1DD(f, k)):
				t.Fatalf("player %d packet %d: descriptor %x under id %d, want %x", i, j, dd, ids[i], av1DD(f, k))
			case ids[i] != 0 && len(pk.GetExtensionIDs()) != 1:
				t.Fatalf("player %d: extensions %v, want only the descriptor", i, pk.GetExtensionIDs())
			}
		}
		t.Logf("player %d (cap %d, descriptor id %d): %d packets", i, caps[i], ids[i], len(pkts))
	}
	if got := r.e.Stats().TemporalDrops; got != 18+12 { // T1 and T2 to the first, T2 to the second
		t.Errorf("temporal drops %d, want 30", got)
	}
	var pattern [8][]byte // frames 4…7: T0, T2, T1, T2
	for i := range pattern {
		pattern[i] = av1Plain(0, 9, 4+i/2, i%2)
	}
	i := 0
	zeroAllocs(t, "AV1 publisher RTP → players capped by the dependency descriptor", func() {
		r.seq++
		p := pattern[i%8]
		binary.BigEndian.PutUint16(p[2:], r.seq)
		r.drive(0, r.encrypt(buf, p))
		i++
	})
}

// readAV1 drains a player's socket.
func readAV1(t *testing.T, r *rig, s sink) []rtp.Packet {
	t.Helper()
	ctx, err := srtp.CreateContext(r.keys.LocalKey, r.keys.LocalSalt, r.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var out []rtp.Packet
	b := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(s.fd, b, unix.MSG_DONTWAIT)
		if err != nil {
			return out
		}
		plain, err := ctx.DecryptRTP(nil, b[:n], nil)
		if err != nil {
			t.Fatal(err)
		}
		var pk rtp.Packet
		if err := pk.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		out = append(out, pk)
	}
}

// TestTemporalCapMoves: a new cap takes effect only where the decoder can
// follow: lower at a frame start, higher at a TID 0 frame start, at once
// for a source the player has not started.
func TestTemporalCapMoves(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cur, want, tid uint8
		start, fresh   bool
		got            uint8
	}{
		{"down mid-frame waits", 0, 1, 2, false, false, 0},
		{"down at a frame start", 0, 1, 2, true, false, 1},
		{"down 3→1 at a T1 frame start", 3, 1, 1, true, false, 1},
		{"up at a T2 frame start waits", 1, 0, 2, true, false, 1},
		{"up at a T0 frame's second packet waits", 1, 0, 0, false, false, 1},
		{"up at a T0 frame start", 1, 0, 0, true, false, 0},
		{"up 1→2 at a T0 frame start", 1, 2, 0, true, false, 2},
		{"fresh source: at once", 0, 1, 2, false, true, 1},
	} {
		c := &core{}
		ps := &route.Session{Temporal: tc.want}
		st := &sessState{}
		st.lay.tcap = tc.cur
		if got := c.temporalCap(ps, st, tc.tid, tc.start, tc.fresh, 0); got != tc.got {
			t.Errorf("%s: cap %d, want %d", tc.name, got, tc.got)
		}
	}
}

// TestTemporalAutoAV1: the estimator's levels drive an AV1 stream's
// temporal cap as they do VP9's: at level 2 an unpinned player gets TID 0
// only, from the next frame start on.
func TestTemporalAutoAV1(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 1, auto: true, codec: route.CodecAV1, dd: 9,
		playerDD: func(int) uint8 { return 9 }})
	buf := make([]byte, 1500)
	send := func(from, to int) {
		for f := from; f < to; f++ {
			for k := range 2 {
				r.seq++
				r.drive(0, r.encrypt(buf, av1Plain(r.seq, 9, f, k)))
			}
		}
	}
	send(0, 4)
	c := r.e.cores[0]
	st := &c.sess[2]
	s := r.e.table.Load().Session(2)
	if n := c.autoLevels(st); n != maxAutoTemporal {
		t.Fatalf("levels %d, want %d", n, maxAutoTemporal)
	}
	c.adaptLayer(s, st, 100)
	c.now += int64(time.Second)
	c.adaptLayer(s, st, 100)
	send(4, 12)
	pkts := readAV1(t, r, r.players[0])
	if len(pkts) != 8+4 {
		t.Fatalf("got %d packets, want 8 of frames 0…3 and 4 of T0 frames 4 and 8", len(pkts))
	}
	for j, pk := range pkts[8:] {
		if n := binary.BigEndian.Uint32(pk.Payload[4:]); n != uint32(9+j/2*8+j%2) || pk.SequenceNumber != pkts[7].SequenceNumber+uint16(j)+1 {
			t.Fatalf("after the move: packet %d is the publisher's %d seq %d", j, n, pk.SequenceNumber)
		}
	}
}

// FuzzKeepExtension: keeping a publisher packet's descriptor and copying
// the result out under another id never panics, keeps the payload, and
// carries the descriptor unchanged.
func FuzzKeepExtension(f *testing.F) {
	f.Add(av1Plain(1, 9, 0, 0), uint8(9), uint8(3))
	f.Add(av1Plain(2, 3, 5, 1), uint8(3), uint8(0))
	f.Add([]byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0xbe, 0xde, 0, 1, 0x31, 0xbe, 0xef, 0, 7}, uint8(3), uint8(20))
	stored, out := make([]byte, 1600), make([]byte, 1600)
	f.Fuzz(func(t *testing.T, p []byte, id, to uint8) {
		if len(p) < 12 || len(p) > 1500 || payloadOffset(p) < 0 { // SRTP's header parse drops these
			return
		}
		n := keepExtension(stored, p, id, id)
		if n > len(stored) || payloadOffset(stored[:n]) < 0 {
			t.Fatalf("kept %d bytes, payload offset %d", n, payloadOffset(stored[:n]))
		}
		m := copyOut(out, stored[:n], to)
		dd, had := twcc.FindExtension(p, id)
		got, has := twcc.FindExtension(out[:m], to)
		if po := payloadOffset(p); had && len(dd) > 0 && to != 0 {
			if !has || !bytes.Equal(got, dd) {
				t.Fatalf("descriptor %x became %x (%v) under id %d", dd, got, has, to)
			}
			if !bytes.Equal(out[payloadOffset(out[:m]):m], p[po:]) {
				t.Fatal("payload changed")
			}
		}
	})
}
