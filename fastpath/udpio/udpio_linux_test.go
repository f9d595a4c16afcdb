package udpio

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// listen opens a loopback socket closed with the test.
func listen(t *testing.T) *Conn {
	t.Helper()
	c, err := Listen(Options{Addr: netip.MustParseAddrPort("127.0.0.1:0"), BufBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addrOf(c *Conn) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(c.Port()))
}

// payload is datagram i of a test: its index in the first two bytes, then
// filler, size bytes in all.
func payload(i, size int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, size)
	b[0], b[1] = byte(i>>8), byte(i)
	return b
}

// recvAll reads datagrams from c with a Batch of batch slots until want
// have arrived or a second passed; it returns them and the size of each
// TryRecv that got any.
func recvAll(t *testing.T, c *Conn, batch, want int) (got [][]byte, rounds []int) {
	t.Helper()
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := NewBatch(batch)
	deadline := time.Now().Add(time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		switch err := b.TryRecv(c); {
		case errors.Is(err, ErrWouldBlock):
			w.Wait(c, 10*time.Millisecond)
			continue
		case err != nil:
			t.Fatal(err)
		}
		rounds = append(rounds, b.N)
		for i := range b.N {
			d, from := b.Datagram(i)
			if !from.Addr().IsLoopback() {
				t.Fatalf("datagram from %v", from)
			}
			got = append(got, append([]byte(nil), d...))
		}
	}
	return got, rounds
}

// TestBatchBoundaries: a Batch receives at most its size per TryRecv and the
// rest on the next; Next reports a full send batch; Out.Buf reports a full
// out batch both by message count and by arena bytes.
func TestBatchBoundaries(t *testing.T) {
	const batch = 8
	for _, total := range []int{batch - 1, batch, batch + 1, 3*batch + 5} {
		t.Run(fmt.Sprintf("datagrams=%d", total), func(t *testing.T) {
			rx, tx := listen(t), listen(t)
			for i := range total {
				if err := tx.WriteTo(payload(i, 100), addrOf(rx)); err != nil {
					t.Fatal(err)
				}
			}
			got, rounds := recvAll(t, rx, batch, total)
			if len(got) != total {
				t.Fatalf("received %d of %d", len(got), total)
			}
			for i, d := range got {
				if !bytes.Equal(d, payload(i, 100)) {
					t.Fatalf("datagram %d out of order or changed", i)
				}
			}
			for _, n := range rounds {
				if n < 1 || n > batch {
					t.Fatalf("TryRecv took %d datagrams with %d slots (rounds %v)", n, batch, rounds)
				}
			}
			if want := (total + batch - 1) / batch; len(rounds) < want {
				t.Fatalf("%d datagrams in %d rounds of %d slots", total, len(rounds), batch)
			}
		})
	}
	t.Run("send batch full", func(t *testing.T) {
		b := NewBatch(batch)
		var sa Sockaddr
		for i := range batch {
			if b.Next() == nil {
				t.Fatalf("Next nil after %d of %d", i, batch)
			}
			b.Commit(10, &sa)
		}
		if b.Next() != nil {
			t.Fatal("Next returned a slot past the batch size")
		}
	})
	t.Run("out full by messages", func(t *testing.T) {
		o := NewOut(batch, batch*MaxDatagram, false)
		var sa Sockaddr
		for i := range batch {
			if o.Buf() == nil {
				t.Fatalf("Buf nil after %d of %d", i, batch)
			}
			o.Commit(10, &sa, uint64(i))
		}
		if o.Buf() != nil {
			t.Fatal("Buf returned room past the message count")
		}
	})
	t.Run("out full by bytes", func(t *testing.T) {
		o := NewOut(batch, 2*MaxDatagram, false)
		var sa Sockaddr
		o.Commit(len(o.Buf()), &sa, 1) // a whole MaxDatagram
		if o.Buf() == nil {
			t.Fatal("no room for the second datagram")
		}
		o.Commit(1, &sa, 2)
		if o.Buf() != nil {
			t.Fatal("Buf returned less than MaxDatagram of arena")
		}
	})
	t.Run("recv zero allocs", func(t *testing.T) {
		rx, tx := listen(t), listen(t)
		b := NewBatch(batch)
		p := payload(1, 200)
		if allocs := testing.AllocsPerRun(100, func() {
			_ = tx.WriteTo(p, addrOf(rx))
			for b.TryRecv(rx) != nil {
			}
			_, _ = b.Datagram(0)
		}); allocs != 0 {
			t.Errorf("WriteTo + TryRecv allocate %v per round", allocs)
		}
	})
}

// commit queues size bytes of datagram i for sa under key.
func commit(t *testing.T, o *Out, sa *Sockaddr, key uint64, i, size int) {
	t.Helper()
	buf := o.Buf()
	if buf == nil {
		t.Fatalf("out batch full at datagram %d", i)
	}
	o.Commit(copy(buf, payload(i, size)), sa, key)
}

// TestGSORuns: which committed datagrams Out chains into one GSO send, and
// that a flushed run arrives as its separate datagrams, in order.
func TestGSORuns(t *testing.T) {
	type dgram struct {
		key  uint64
		size int
	}
	run := func(key uint64, size, n int) []dgram {
		out := make([]dgram, n)
		for i := range out {
			out[i] = dgram{key, size}
		}
		return out
	}
	cat := func(runs ...[]dgram) []dgram {
		var out []dgram
		for _, r := range runs {
			out = append(out, r...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []dgram
		segs []int // datagrams per sendmmsg message
	}{
		{"one destination, one size", run(1, 1000, 5), []int{5}},
		{"shorter last segment joins", cat(run(1, 1000, 3), run(1, 300, 1)), []int{4}},
		{"after a shorter segment a new run", cat(run(1, 1000, 2), run(1, 300, 1), run(1, 1000, 2)), []int{3, 2}},
		{"longer segment starts a new run", cat(run(1, 300, 2), run(1, 1000, 2)), []int{2, 2}},
		{"destination change", cat(run(1, 500, 2), run(2, 500, 2), run(1, 500, 1)), []int{2, 2, 1}},
		{"at most 64 segments", run(1, 100, 70), []int{64, 6}},
		{"at most 65000 bytes", run(1, 1200, 60), []int{54, 6}},
		{"lone datagrams", cat(run(1, 100, 1), run(2, 100, 1), run(3, 100, 1)), []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx, tx := listen(t), listen(t)
			if !ProbeGSO(tx) {
				t.Skip("kernel without UDP_SEGMENT (UDP GSO, Linux 4.18)")
			}
			var sa Sockaddr
			tx.EncodeAddr(&sa, addrOf(rx))
			o := NewOut(128, 128*MaxDatagram, true)
			for i, d := range tc.in {
				commit(t, o, &sa, d.key, i, d.size)
			}
			if segs := fmt.Sprint(o.segs[:o.N]); segs != fmt.Sprint(tc.segs) {
				t.Fatalf("runs %v, want %v", segs, tc.segs)
			}
			sends, segments := o.GSOCounts()
			wantSends, wantSegs := 0, 0
			for _, s := range tc.segs {
				if s > 1 {
					wantSends, wantSegs = wantSends+1, wantSegs+s
				}
			}
			if sends != wantSends || segments != wantSegs {
				t.Fatalf("GSOCounts %d sends %d segments, want %d %d", sends, segments, wantSends, wantSegs)
			}
			sent, dropped, gsoFailed := o.Flush(tx)
			if sent != len(tc.in) || dropped != 0 || gsoFailed {
				t.Fatalf("Flush: sent %d dropped %d gsoFailed %v", sent, dropped, gsoFailed)
			}
			if o.N != 0 || o.Packets != 0 || o.Buf() == nil {
				t.Fatal("Flush left the batch non-empty")
			}
			got, _ := recvAll(t, rx, 64, len(tc.in))
			if len(got) != len(tc.in) {
				t.Fatalf("received %d of %d", len(got), len(tc.in))
			}
			for i, d := range got {
				if !bytes.Equal(d, payload(i, tc.in[i].size)) {
					t.Fatalf("datagram %d: %d bytes, want %d, or out of order", i, len(d), tc.in[i].size)
				}
			}
		})
	}
	t.Run("gso off", func(t *testing.T) {
		var sa Sockaddr
		o := NewOut(16, 16*MaxDatagram, false)
		for i := range 4 {
			commit(t, o, &sa, 1, i, 500)
		}
		o.SetGSO(true) // from now on only
		for i := range 3 {
			commit(t, o, &sa, 1, 4+i, 500)
		}
		if segs := fmt.Sprint(o.segs[:o.N]); segs != "[1 1 1 1 3]" {
			t.Fatalf("runs %v", segs)
		}
	})
}

// TestPartialSend: sendmmsg stops at a message the kernel refuses and
// reports how many went before it; Flush counts that message's datagrams as
// dropped and sends the rest, for plain datagrams and for GSO runs.
func TestPartialSend(t *testing.T) {
	rx, tx := listen(t), listen(t)
	var good, bad Sockaddr // bad: no address on an unconnected socket (EDESTADDRREQ)
	tx.EncodeAddr(&good, addrOf(rx))

	t.Run("batch", func(t *testing.T) {
		b := NewBatch(8)
		dests := []*Sockaddr{&good, &good, &bad, &good, &bad, &bad, &good}
		var want [][]byte
		for i, sa := range dests {
			p := payload(i, 64)
			b.Commit(copy(b.Next(), p), sa)
			if sa == &good {
				want = append(want, p)
			}
		}
		if dropped := b.Flush(tx); dropped != 3 {
			t.Fatalf("dropped %d, want 3", dropped)
		}
		if b.N != 0 {
			t.Fatal("Flush left messages queued")
		}
		got, _ := recvAll(t, rx, 8, len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("received %d datagrams, want the %d good ones in order", len(got), len(want))
		}
	})
	t.Run("out", func(t *testing.T) {
		o := NewOut(16, 16*MaxDatagram, ProbeGSO(tx))
		// good run of 3, bad run of 2, good lone datagram, bad lone datagram, good run of 2
		plan := []struct {
			sa   *Sockaddr
			key  uint64
			n    int
			size int
		}{{&good, 1, 3, 900}, {&bad, 2, 2, 900}, {&good, 3, 1, 400}, {&bad, 4, 1, 400}, {&good, 5, 2, 700}}
		var want [][]byte
		i := 0
		for _, p := range plan {
			for range p.n {
				commit(t, o, p.sa, p.key, i, p.size)
				if p.sa == &good {
					want = append(want, payload(i, p.size))
				}
				i++
			}
		}
		sent, dropped, gsoFailed := o.Flush(tx)
		if sent != len(want) || dropped != i-len(want) || gsoFailed {
			t.Fatalf("sent %d dropped %d gsoFailed %v, want %d %d false", sent, dropped, gsoFailed, len(want), i-len(want))
		}
		if !o.GSO() && ProbeGSO(tx) {
			t.Fatal("a refused destination turned GSO off")
		}
		got, _ := recvAll(t, rx, 16, len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("received %d datagrams, want the %d good ones in order", len(got), len(want))
		}
	})
}
