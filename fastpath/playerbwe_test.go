package fastpath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/fanout/fanout/fastpath/twcc"
)

const playerTWCCExt = 5

// readTWCC reads player i's packets back and returns their transport
// sequence numbers and RTP sequence numbers.
func readTWCC(t *testing.T, r *rig, i int) (tseqs, seqs []uint16) {
	t.Helper()
	ctx, err := srtp.CreateContext(r.keys.LocalKey, r.keys.LocalSalt, r.keys.Profile)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(r.players[i].fd, b, unix.MSG_DONTWAIT)
		if err != nil {
			return tseqs, seqs
		}
		plain, err := ctx.DecryptRTP(nil, b[:n], nil)
		if err != nil {
			t.Fatalf("player %d: %v", i, err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		ext := p.GetExtension(playerTWCCExt)
		if len(ext) != 2 || len(p.GetExtensionIDs()) != 1 {
			t.Fatalf("player %d: extensions %v, want only transport-cc id %d", i, p.GetExtensionIDs(), playerTWCCExt)
		}
		tseqs, seqs = append(tseqs, binary.BigEndian.Uint16(ext)), append(seqs, p.SequenceNumber)
	}
}

// TestPlayerTWCC: a player that negotiated transport-cc gets every packet
// with its own consecutive transport sequence numbers (the payload
// untouched), its feedback reaches its estimator, and padding-only packets
// of its simulcast layer are left out without a gap in its sequence
// numbers. All of it allocates nothing per packet.
func TestPlayerTWCC(t *testing.T) {
	r := newRig(t, rigOptions{cfg: Config{Cores: 1}, subs: 2, layers: 1, auto: true, twcc: playerTWCCExt})
	buf := make([]byte, 1500)
	for i := range 20 {
		if i == 10 { // a probe's padding: 200 bytes of it
			r.drive(0, r.nextPadding(buf))
			continue
		}
		r.drive(0, r.nextLayer(buf, 0))
	}
	for i := range r.players {
		tseqs, seqs := readTWCC(t, r, i)
		if len(tseqs) != 19 {
			t.Fatalf("player %d: %d packets, want 19 (padding left out)", i, len(tseqs))
		}
		for k := 1; k < len(tseqs); k++ {
			if tseqs[k] != tseqs[k-1]+1 || seqs[k] != seqs[k-1]+1 {
				t.Fatalf("player %d packet %d: transport seq %d after %d, seq %d after %d", i, k, tseqs[k], tseqs[k-1], seqs[k], seqs[k-1])
			}
		}
	}
	if s := r.e.Stats(); s.PaddingDrops != 2 {
		t.Errorf("padding drops %d, want 2", s.PaddingDrops)
	}

	// Feedback: everything arrived, 1 ms apart.
	var rec twcc.Recorder
	for k := range uint16(19) {
		rec.Record(k, int64(time.Second)+int64(k)*int64(time.Millisecond))
	}
	fb := make([]byte, 200)
	n, _ := rec.BuildFeedback(fb, 0xa0000000, pubSSRC, 0)
	ctx := r.playerRTCPContext(t)
	enc, err := ctx.EncryptRTCP(nil, fb[:n], nil)
	if err != nil {
		t.Fatal(err)
	}
	c := r.e.cores[0]
	c.begin()
	c.handle(enc, r.players[0].addr)
	c.finish()
	if e := c.sess[2].pq.bwe; e == nil || e.Stats.Feedbacks != 1 || e.Stats.Acked != 19 {
		t.Fatalf("estimator %+v", e)
	}
	if s := r.e.Stats(); s.TWCCIn != 1 {
		t.Errorf("twcc in %d, want 1", s.TWCCIn)
	}

	zeroAllocs(t, "simulcast RTP → 2 players with transport-cc", func() { r.drive(0, r.nextLayer(buf, 0)) })
	zeroAllocs(t, "padding-only RTP", func() { r.drive(0, r.nextPadding(buf)) })
	fbEnc := make([]byte, 0, 300)
	var rh rtcp.Header
	zeroAllocs(t, "player transport-wide feedback", func() {
		out, err := ctx.EncryptRTCP(fbEnc[:0], fb[:n], &rh)
		if err != nil {
			t.Fatal(err)
		}
		c.begin()
		c.handle(out, r.players[0].addr)
		c.finish()
	})
}

// nextPadding is nextLayer(dst, 0) carrying only padding (RFC 3550 §5.1).
func (r *rig) nextPadding(dst []byte) []byte {
	r.seq++
	p := r.plain[:12+8+200]
	p[0], p[1] = 0xb0, pubPT
	binary.BigEndian.PutUint16(p[2:], r.seq)
	binary.BigEndian.PutUint32(p[4:], uint32(r.seq)*3000)
	binary.BigEndian.PutUint32(p[8:], pubSSRC)
	copy(p[12:], []byte{0xbe, 0xde, 0, 1, simRIDExt << 4, simRIDs[0], 0, 0})
	clear(p[20:])
	p[len(p)-1] = 200
	enc, err := r.pubCtx.EncryptRTP(dst[:0], p, &r.hdr)
	if err != nil {
		panic(err)
	}
	return enc
}

// BenchmarkFanoutTWCC is BenchmarkFanout (GCM, GSO) with players that
// negotiated transport-cc (twcc=on: every egress packet stamped with its
// transport sequence number and remembered for the feedback) beside the
// same run without (twcc=off). Compare cpu-ns/egress-pkt.
func BenchmarkFanoutTWCC(b *testing.B) {
	for _, subs := range []int{10, 100, 1000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("srtp=gcm/subs=%d/gso=true/twcc=%v", subs, on), func(b *testing.B) {
				o := rigOptions{cfg: Config{Cores: 1, GSO: true}, subs: subs, rcvbuf: 4096, profile: gcm}
				if on {
					o.twcc = playerTWCCExt
				}
				benchFanoutRig(b, o)
			})
		}
	}
}

// TestStampWithDescriptor: a player with transport-cc and the AV1
// dependency descriptor gets both in one block (one-byte form for small
// ids, two-byte beyond 14), the payload unchanged, without allocating; a
// packet without a kept extension is stamped in place.
func TestStampWithDescriptor(t *testing.T) {
	p := av1Plain(1, 9, 0, 0)
	dd, _ := twcc.FindExtension(p, 9)
	stored := make([]byte, 1600)
	stored = stored[:keepExtension(stored, p, 9, 9)]
	out := make([]byte, 1600)
	for _, ddID := range []uint8{5, 20} {
		n, ok := putTWCCWithDD(out, stored, ddID, 3, 0x1234)
		got, has := twcc.FindExtension(out[:n], ddID)
		seq, hasSeq := twcc.FindExtension(out[:n], 3)
		if !ok || !has || !bytes.Equal(got, dd) || !hasSeq || !bytes.Equal(seq, []byte{0x12, 0x34}) {
			t.Fatalf("dd id %d: ok %v, descriptor %x (%v), seq %x (%v)", ddID, ok, got, has, seq, hasSeq)
		}
		if po := payloadOffset(out[:n]); !bytes.Equal(out[po:n], p[payloadOffset(p):]) {
			t.Fatalf("dd id %d: payload changed", ddID)
		}
		if a := testing.AllocsPerRun(100, func() { putTWCCWithDD(out, stored, ddID, 3, 7) }); a != 0 {
			t.Fatalf("dd id %d: %v allocs", ddID, a)
		}
	}
	plain := make([]byte, 1600)
	n := stripExtensions(plain, p)
	body := append([]byte(nil), plain[12:n]...)
	m, ok := stampInPlace(plain, n, 3, 0xbeef)
	seq, has := twcc.FindExtension(plain[:m], 3)
	if !ok || !has || !bytes.Equal(seq, []byte{0xbe, 0xef}) || !bytes.Equal(plain[payloadOffset(plain[:m]):m], body) {
		t.Fatalf("in place: ok %v, seq %x (%v)", ok, seq, has)
	}
}
