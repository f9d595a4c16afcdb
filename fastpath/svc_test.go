package fastpath

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/route"
)

func TestVP9TID(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		want uint8
	}{
		{"no layer indices", []byte{0x88, 0x01}, noTID},
		{"7-bit picture id", []byte{0xa8, 0x05, 2<<5 | 0x10, 0x03}, 2},
		{"15-bit picture id", []byte{0xa8, 0x85, 0x01, 1 << 5, 0x03}, 1},
		{"no picture id", []byte{0x28, 3 << 5}, 3},
		{"truncated after picture id", []byte{0xa8, 0x85, 0x01}, noTID},
		{"empty", nil, noTID},
	} {
		if got := vp9TID(tc.p); got != tc.want {
			t.Errorf("%s: tid %d, want %d", tc.name, got, tc.want)
		}
	}
	p := []byte{0xa8, 0x85, 0x01, 1 << 5, 0x03}
	zeroAllocs(t, "vp9TID", func() { _ = vp9TID(p) })
}

func FuzzVP9TID(f *testing.F) {
	f.Add([]byte{0xa8, 0x85, 0x01, 1 << 5, 0x03})
	f.Fuzz(func(_ *testing.T, p []byte) { _ = vp9TID(p) })
}

// nextVP9 encrypts the publisher's next packet: a VP9 payload descriptor
// (I, L, B, E; non-flexible) of temporal layer tid, then the counter.
func (r *rig) nextVP9(dst []byte, tid uint8) []byte {
	r.seq++
	p := r.plain
	p[0], p[1] = 0x80, pubPT|0x80
	binary.BigEndian.PutUint16(p[2:], r.seq)
	binary.BigEndian.PutUint32(p[4:], uint32(r.seq)*3000)
	binary.BigEndian.PutUint32(p[8:], pubSSRC)
	copy(p[12:], []byte{0xac, byte(r.seq & 0x7f), tid << 5, 0})
	if r.seq != 1 {
		p[12] |= 0x40 // P: not a key frame
	}
	binary.BigEndian.PutUint32(p[16:], uint32(r.seq))
	enc, err := r.pubCtx.EncryptRTP(dst[:0], p, &r.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// TestTemporalAuto: an unpinned player of a VP9 L1T3 publisher gets every
// temporal layer until its loss level rises; at level 2 only TID 0, with
// its sequence numbers still consecutive.
func TestTemporalAuto(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 1, auto: true, codec: route.CodecVP9})
	buf := make([]byte, 1500)
	tids := []uint8{0, 2, 1, 2}
	for i := range 8 {
		r.drive(0, r.nextVP9(buf, tids[i%4]))
	}
	c := r.e.cores[0]
	st := &c.sess[2]
	s := r.e.table.Load().Session(2)
	if n := c.autoLevels(st); n != maxAutoTemporal {
		t.Fatalf("levels %d, want %d", n, maxAutoTemporal)
	}
	c.adaptLayer(s, st, 100)
	c.now += int64(time.Second)
	c.adaptLayer(s, st, 100)
	if st.lay.auto.floor != 2 {
		t.Fatalf("level %d after two lossy reports", st.lay.auto.floor)
	}
	for i := range 8 {
		r.drive(0, r.nextVP9(buf, tids[i%4]))
	}
	seqs, marks := readVP9(t, r, r.players[0])
	want := []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 13}
	if len(marks) != len(want) {
		t.Fatalf("player got packets %v, want %v", marks, want)
	}
	for i := range want {
		if marks[i] != want[i] || (i > 0 && seqs[i] != seqs[i-1]+1) {
			t.Fatalf("player got packets %v seqs %v, want %v with consecutive seqs", marks, seqs, want)
		}
	}
	if got := r.e.Stats().TemporalDrops; got != 6 {
		t.Errorf("temporal drops %d, want 6", got)
	}
	i := 0
	zeroAllocs(t, "VP9 publisher RTP → a player capped at TID 0", func() {
		r.drive(0, r.nextVP9(buf, tids[i%4]))
		i++
	})
}

// readVP9 drains a player's socket: the seq and publisher counter of each packet.
func readVP9(t *testing.T, r *rig, s sink) (seqs []uint16, marks []uint32) {
	t.Helper()
	ctx, err := srtp.CreateContext(r.keys.LocalKey, r.keys.LocalSalt, r.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(s.fd, b, unix.MSG_DONTWAIT)
		if err != nil {
			return seqs, marks
		}
		plain, err := ctx.DecryptRTP(nil, b[:n], nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, binary.BigEndian.Uint16(plain[2:]))
		marks = append(marks, binary.BigEndian.Uint32(plain[16:]))
	}
}
