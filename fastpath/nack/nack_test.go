package nack

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

const ms = int64(time.Millisecond)

func TestReceiverPush(t *testing.T) {
	type step struct {
		seq  uint16
		want PushResult
	}
	for _, tc := range []struct {
		name        string
		steps       []step
		missing     int
		highest     int64
		lost, recov uint64
	}{
		{"in order", []step{{10, PushFirst}, {11, PushInOrder}, {12, PushInOrder}}, 0, 12, 0, 0},
		{"gap", []step{{10, PushFirst}, {13, PushInOrder}}, 2, 13, 2, 0},
		{"gap then recover", []step{{10, PushFirst}, {13, PushInOrder}, {11, PushRecovered}, {12, PushRecovered}}, 0, 13, 2, 2},
		{"duplicate", []step{{10, PushFirst}, {10, PushOld}, {11, PushInOrder}, {11, PushOld}}, 0, 11, 0, 0},
		{"recover twice", []step{{10, PushFirst}, {12, PushInOrder}, {11, PushRecovered}, {11, PushOld}}, 0, 12, 1, 1},
		{"wraparound", []step{{65534, PushFirst}, {65535, PushInOrder}, {1, PushInOrder}, {0, PushRecovered}}, 0, 65537, 1, 1},
		{"gap across wrap", []step{{65533, PushFirst}, {2, PushInOrder}}, 4, 65538, 4, 0},
		{"reordered untracked", []step{{100, PushFirst}, {101, PushInOrder}, {99, PushOld}}, 0, 101, 0, 0},
		{"big jump ignored once", []step{{100, PushFirst}, {20000, PushOld}, {101, PushInOrder}}, 0, 101, 0, 0},
		{"big jump confirmed: resync", []step{{100, PushFirst}, {20000, PushOld}, {20001, PushReset}, {20002, PushInOrder}}, 0, 20002, 0, 0},
		{"gap too big: reset", []step{{0, PushFirst}, {MaxMissing + 2, PushReset}, {MaxMissing + 3, PushInOrder}}, 0, MaxMissing + 3, 0, 0},
		{"gap fills list exactly", []step{{0, PushFirst}, {MaxMissing + 1, PushInOrder}}, MaxMissing, MaxMissing + 1, MaxMissing, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Receiver
			for i, s := range tc.steps {
				if got := r.Push(s.seq, int64(i)*ms); got != s.want {
					t.Fatalf("step %d seq %d: got %d want %d", i, s.seq, got, s.want)
				}
			}
			if got := r.Missing(); got != tc.missing {
				t.Errorf("missing %d want %d", got, tc.missing)
			}
			if r.Highest() != tc.highest {
				t.Errorf("highest %d want %d", r.Highest(), tc.highest)
			}
			if r.Stats.Lost != tc.lost || r.Stats.Recovered != tc.recov {
				t.Errorf("stats %+v", r.Stats)
			}
		})
	}
}

func TestReceiverCollectSchedule(t *testing.T) {
	var r Receiver
	r.Push(1, 0)
	r.Push(3, 0) // 2 missing at t=0
	dst := make([]uint16, 0, 64)
	const rtt = 40 * ms // retry interval 60 ms
	type tick struct {
		at   int64
		want []uint16
	}
	ticks := []tick{
		{5 * ms, nil},          // inside the reorder tolerance
		{10 * ms, []uint16{2}}, // first request
		{30 * ms, nil},
		{69 * ms, nil},
		{70 * ms, []uint16{2}}, // retry after 1.5 RTT
		{130 * ms, []uint16{2}},
	}
	for _, tk := range ticks {
		got := r.Collect(tk.at, rtt, dst[:0])
		if !slices.Equal(got, tk.want) {
			t.Fatalf("at %d ms: got %v want %v", tk.at/ms, got, tk.want)
		}
	}
	if r.Stats.Requested != 3 {
		t.Errorf("requested %d", r.Stats.Requested)
	}
	r.Push(2, 140*ms)
	if got := r.Collect(200*ms, rtt, dst[:0]); len(got) != 0 || r.Missing() != 0 {
		t.Errorf("recovered hole still requested: %v", got)
	}
}

func TestReceiverGiveUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		rtt  int64
		// how many requests before giving up
		wantRequests uint64
	}{
		{"by tries: small rtt", 1 * ms, MaxTries},          // 20 ms retries: 15 tries inside 1 s
		{"by time: large rtt", 200 * ms, 1 + 1000/300 + 0}, // 300 ms retries: t=10,310,610,910
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Receiver
			r.Push(0, 0)
			r.Push(2, 0)
			dst := make([]uint16, 0, 8)
			for now := int64(0); now <= 2000*ms; now += ms {
				r.Collect(now, tc.rtt, dst[:0])
			}
			if r.Stats.Requested != tc.wantRequests || r.Stats.GivenUp != 1 || r.Missing() != 0 {
				t.Errorf("stats %+v missing %d", r.Stats, r.Missing())
			}
			if !r.TakeKeyframeRequest() || r.TakeKeyframeRequest() {
				t.Error("give-up must request one keyframe")
			}
		})
	}
}

func TestReceiverCollectBounded(t *testing.T) {
	var r Receiver
	r.Push(0, 0)
	r.Push(101, 0) // 100 holes
	dst := make([]uint16, 0, 30)
	got := r.Collect(20*ms, 0, dst)
	if len(got) != 30 || got[0] != 1 || got[29] != 30 {
		t.Fatalf("first batch %v", got)
	}
	got = r.Collect(21*ms, 0, dst[:0])
	if len(got) != 30 || got[0] != 31 {
		t.Fatalf("second batch starts at %v", got[:1])
	}
}

func TestRetryInterval(t *testing.T) {
	for _, tc := range []struct{ rtt, want int64 }{
		{0, 75 * ms}, {-1, 75 * ms}, {1 * ms, MinRetry}, {100 * ms, 150 * ms}, {2000 * ms, MaxRetry},
	} {
		if got := RetryInterval(tc.rtt); got != tc.want {
			t.Errorf("RetryInterval(%d) = %d want %d", tc.rtt, got, tc.want)
		}
	}
}

func TestBuildParseNACK(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint16
		fcis int
	}{
		{"one", []uint16{7}, 1},
		{"pid+blp", []uint16{7, 8, 23}, 1},
		{"blp overflow", []uint16{7, 24}, 2},
		{"wrap", []uint16{65534, 65535, 0, 1}, 1},
		{"sparse", []uint16{1, 100, 200, 300}, 4},
		{"unsorted", []uint16{10, 5, 11}, 2},
		{"many", seqRange(1000, 200), 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 1200)
			n, used := BuildNACK(buf, 1, 0xdeadbeef, tc.seqs)
			if used != len(tc.seqs) || n != 12+4*tc.fcis {
				t.Fatalf("n=%d used=%d", n, used)
			}
			var p rtcp.TransportLayerNack
			if err := p.Unmarshal(buf[:n]); err != nil {
				t.Fatal(err)
			}
			var fromPion []uint16
			for _, pair := range p.Nacks {
				fromPion = append(fromPion, pair.PacketList()...)
			}
			var ours []uint16
			ParseNACK(buf[12:n], func(s uint16) { ours = append(ours, s) })
			want := slices.Clone(tc.seqs)
			for _, got := range [][]uint16{fromPion, ours} {
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("got %v want %v", got, want)
				}
			}
			if p.MediaSSRC != 0xdeadbeef || p.SenderSSRC != 1 {
				t.Errorf("ssrcs %+v", p)
			}
		})
	}
}

func TestBuildNACKSmallBuffer(t *testing.T) {
	seqs := []uint16{1, 100, 200, 300}
	buf := make([]byte, 12+8)
	n, used := BuildNACK(buf, 1, 2, seqs)
	if n != 20 || used != 2 {
		t.Fatalf("n=%d used=%d", n, used)
	}
	n, used = BuildNACK(buf, 1, 2, seqs[used:])
	if n != 20 || used != 2 {
		t.Fatalf("n=%d used=%d", n, used)
	}
	if n, used := BuildNACK(buf[:15], 1, 2, seqs); n != 0 || used != 0 {
		t.Fatalf("tiny buffer: n=%d used=%d", n, used)
	}
}

func seqRange(from uint16, n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = from + uint16(i)
	}
	return s
}

func TestHistory(t *testing.T) {
	h := NewHistory(VideoHistory)
	pkt := func(seq uint16) []byte { return rtpPacket(seq, 96, 100+int(seq%7)) }
	for s := uint16(65000); s != 1000; s++ {
		h.Put(s, pkt(s))
	}
	for _, tc := range []struct {
		seq uint16
		ok  bool
	}{{999, true}, {1000 - VideoHistory + 65536, true}, {1000 - VideoHistory + 65535, false}, {1000, false}, {65000, false}} {
		got, ok := h.Get(tc.seq)
		if ok != tc.ok || (ok && !bytes.Equal(got, pkt(tc.seq))) {
			t.Errorf("Get(%d) ok=%v want %v", tc.seq, ok, tc.ok)
		}
	}
	if h.Put(5, make([]byte, SlotSize+1)) {
		t.Error("oversize packet stored")
	}
	if _, ok := h.Get(5 - VideoHistory + 65536); ok {
		t.Error("slot of an oversize packet still serves the older packet")
	}
	h.Reset()
	if _, ok := h.Get(999); ok {
		t.Error("Reset kept packets")
	}
	for _, bad := range []int{0, 3, 65536, -4} {
		func() {
			defer func() { _ = recover() }()
			NewHistory(bad)
			t.Errorf("NewHistory(%d) did not panic", bad)
		}()
	}
}

// rtpPacket builds a packet with a CSRC, a header extension and padding.
func rtpPacket(seq uint16, pt uint8, payload int) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: 90000,
		SSRC: 0x11223344, Marker: true, CSRC: []uint32{7}, Padding: true, PaddingSize: 3}}
	_ = p.SetExtension(3, []byte{1, 2})
	p.Payload = make([]byte, payload)
	for i := range p.Payload {
		p.Payload[i] = byte(int(seq) + i)
	}
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// TestReceiverRandomLoss drives the receiver with random loss and reorder,
// retransmitting what it asks for, and checks every hole is repaired.
func TestReceiverRandomLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var r Receiver
	dst := make([]uint16, 0, 256)
	type pending struct {
		seq uint16
		at  int64
	}
	var inflight []pending
	seq := uint16(60000)
	for now := int64(0); now < 5000*ms; now += ms {
		for range 2 { // 2 packets per ms
			if rng.IntN(100) >= 5 {
				r.Push(seq, now)
			}
			seq++
		}
		for i := 0; i < len(inflight); {
			if inflight[i].at <= now {
				if rng.IntN(100) >= 5 {
					r.Push(inflight[i].seq, now)
				}
				inflight = slices.Delete(inflight, i, i+1)
				continue
			}
			i++
		}
		if now%20 == 0 {
			for _, s := range r.Collect(now, 30*ms, dst[:0]) {
				inflight = append(inflight, pending{s, now + 30*ms})
			}
		}
	}
	if r.Stats.GivenUp > 0 || r.Stats.Resets > 0 || r.Stats.Recovered < r.Stats.Lost-uint64(r.Missing()) {
		t.Errorf("stats %+v missing %d", r.Stats, r.Missing())
	}
}
