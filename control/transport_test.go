package control

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestRepeatFinal: as the DTLS server, the datagram carrying the
// ChangeCipherSpec (the final flight) goes out twice more, once per
// handshake; other datagrams, and the client role, go out once.
func TestRepeatFinal(t *testing.T) {
	var mu sync.Mutex
	sent := map[byte]int{}
	send := func(b []byte, _ netip.AddrPort) error {
		mu.Lock()
		sent[b[0]]++
		mu.Unlock()
		return nil
	}
	peer := func() netip.AddrPort { return netip.MustParseAddrPort("192.0.2.1:5000") }
	record := func(ct byte, n int) []byte {
		r := make([]byte, 13+n)
		r[0], r[1], r[2], r[12] = ct, 0xfe, 0xfd, byte(n)
		return r
	}
	hs := record(22, 40)                              // a handshake flight
	final := append(record(20, 1), record(22, 40)...) // ChangeCipherSpec + Finished

	srv := newDTLSTransport(send, peer)
	srv.server = true
	cli := newDTLSTransport(send, peer)
	for _, tr := range []*dtlsTransport{srv, cli} {
		_, _ = tr.WriteTo(hs, nil)
		_, _ = tr.WriteTo(final, nil)
		_, _ = tr.WriteTo(final, nil) // a retransmission: no more repeats
	}
	time.Sleep(finalRepeats[len(finalRepeats)-1] + 100*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if sent[22] != 2 {
		t.Errorf("handshake datagrams sent %d times, want 2 (once per transport)", sent[22])
	}
	if want := 4 + len(finalRepeats); sent[20] != want {
		t.Errorf("final flight sent %d times, want %d (twice per transport, %d repeats for the server)", sent[20], want, len(finalRepeats))
	}
	if hasChangeCipherSpec(record(22, 40)) || !hasChangeCipherSpec(append(record(22, 3), record(20, 1)...)) {
		t.Error("hasChangeCipherSpec")
	}
}
