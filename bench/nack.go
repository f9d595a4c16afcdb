package bench

import (
	"github.com/pion/rtcp"
	"golang.org/x/sys/unix"
)

// sendNACK asks for count packets from first (RFC 4585 §6.2.1 generic NACK),
// only when the run was asked to (-nack). It allocates: it runs on loss, not
// per packet.
func (s *subscriber) sendNACK(k *subKeys, ssrc uint32, first, count uint16) {
	if count > 64 {
		count = 64
	}
	seqs := make([]uint16, count)
	for i := range seqs {
		seqs[i] = first + uint16(i)
	}
	pkt := rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
	raw, err := pkt.Marshal()
	if err != nil {
		return
	}
	enc, err := k.enc.EncryptRTCP(nil, raw, nil)
	if err != nil {
		return
	}
	_, _ = unix.Write(s.fd, enc)
}
