package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/fanout/fanout/fastpath/route"
)

// FuzzTCPFrames feeds an RFC 4571 byte stream, cut into frames as the
// TCP transport cuts it, to Engine.TCPFrame from a known session's address
// and from an unknown peer: STUN goes up to control, DTLS up for the known
// peer only, SRTP/SRTCP through the core's inbox. Nothing panics, nothing
// goes up from the unknown peer but STUN, every upcall buffer returns to
// the pool, and the core's round stays clean.
func FuzzTCPFrames(f *testing.F) {
	r := newRig(f, rigOptions{subs: 1})
	stun := bindingRequest(f, "server:client", "pwd")
	dtls := append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 8)...)
	srtp := r.next(make([]byte, 1500))
	f.Add(tcpFramed(stun, dtls, srtp))
	f.Add(tcpFramed(stun, []byte{0x80, 0xc9, 0, 1, 0, 0, 0, 1}))
	f.Add(tcpFramed(dtls[:13]))
	f.Add([]byte{0, 0, 0xff, 0xff})
	known := route.TCPPeer(r.players[0].addr)
	unknown := route.TCPPeer(netip.MustParseAddrPort("192.0.2.9:40000"))
	b := route.NewBuilder(2, 2, 1)
	for _, s := range r.e.Table().Sessions[1:] {
		if s.ID == 2 {
			s.Peer = known
		}
		b.AddSession(s, s.Peer)
	}
	b.AddStream(route.Stream{ID: 1, Publisher: 1, Players: []route.SessionID{2}})
	r.e.Publish(b.Table())
	f.Fuzz(func(t *testing.T, stream []byte) {
		for len(stream) >= 2 {
			n := int(binary.BigEndian.Uint16(stream))
			if n == 0 || 2+n > len(stream) {
				break
			}
			frame := stream[2 : 2+n]
			r.e.TCPFrame(known, frame)
			r.e.TCPFrame(unknown, frame)
			stream = stream[2+n:]
		}
		for drained := false; !drained; {
			select {
			case u := <-r.e.Upcalls():
				if u.From == unknown && u.Kind != route.UpSTUN {
					t.Fatalf("upcall %v from an unknown TCP peer", u.Kind)
				}
				r.e.Release(u)
			default:
				drained = true
			}
		}
		r.drive(0)
	})
}

// tcpFramed joins payloads with RFC 4571 length prefixes.
func tcpFramed(payloads ...[]byte) []byte {
	var out []byte
	for _, p := range payloads {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}
