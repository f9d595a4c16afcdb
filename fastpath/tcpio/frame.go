package tcpio

import "encoding/binary"

// RFC 4571 §2: LENGTH (16 bits, big-endian) followed by that many bytes.
const (
	lenPrefix       = 2
	defaultMaxFrame = 1500 // SRS: longer frames are a connection error
	maxWireFrame    = 0xFFFF

	stunHeader       = 20
	stunMagicCookie  = 0x2112A442
	stunBindingReq   = 0x0001
	sniffHeaderBytes = lenPrefix + 8 // length + type + length + cookie
)

// frameStatus is nextFrame's verdict on the head of a byte stream.
type frameStatus uint8

const (
	frameOK         frameStatus = iota // a complete frame
	frameShort                         // need more bytes
	frameBadSize                       // length 0 or above the maximum: close
	frameNotBinding                    // the first frame is not a Binding Request: close
)

// framer is one connection's inbound parser state.
type framer struct {
	maxFrame int
	started  bool // the first frame (a Binding Request) has been seen
}

// next parses the frame at the head of buf (gnet's inbound bytes, in place).
// On frameOK, frame aliases buf and n bytes are consumed. The first frame of
// a connection must be a STUN Binding Request: an ICE-TCP connection opens
// with a connectivity check from the active side (RFC 6544), and SRS
// refuses anything else.
func (f *framer) next(buf []byte) (frame []byte, n int, st frameStatus) {
	frame, n, st = nextFrame(buf, f.maxFrame)
	if st != frameOK || f.started {
		return frame, n, st
	}
	if !isBindingRequest(frame) {
		return nil, 0, frameNotBinding
	}
	f.started = true
	return frame, n, frameOK
}

// nextFrame parses the RFC 4571 frame at the head of buf. On frameOK it returns
// the payload (aliasing buf) and the bytes consumed including the prefix.
func nextFrame(buf []byte, maxFrame int) (frame []byte, n int, st frameStatus) {
	if len(buf) < lenPrefix {
		return nil, 0, frameShort
	}
	size := int(binary.BigEndian.Uint16(buf))
	if size == 0 || size > maxFrame {
		return nil, 0, frameBadSize
	}
	if len(buf) < lenPrefix+size {
		return nil, 0, frameShort
	}
	return buf[lenPrefix : lenPrefix+size], lenPrefix + size, frameOK
}

// isBindingRequest reports whether frame is a STUN Binding Request (RFC 8489
// §5: type 0x0001, magic cookie) whose header length matches the frame, the
// check SRS applies to the first frame of an ICE-TCP connection.
func isBindingRequest(frame []byte) bool {
	if len(frame) < stunHeader {
		return false
	}
	return binary.BigEndian.Uint16(frame) == stunBindingReq &&
		int(binary.BigEndian.Uint16(frame[2:]))+stunHeader == len(frame) &&
		binary.BigEndian.Uint32(frame[4:]) == stunMagicCookie
}

// sniffVerdict is classify's answer for the first bytes of a shared-port stream.
type sniffVerdict uint8

const (
	sniffMore   sniffVerdict = iota // not enough bytes to tell
	sniffWebRTC                     // RFC 4571 framed STUN Binding Request
	sniffOther                      // HTTP, TLS or anything else
)

// classify looks at the first bytes of a connection on a shared port: bytes
// [len hi, len lo, 0x00, 0x01, stun len hi, stun len lo, 0x21, 0x12, 0xA4, 0x42]
// with frame length == STUN length + 20 is WebRTC over TCP (SRS's check, which
// also requires len hi == 0; we accept any length the frame limit allows).
// It decides as early as a byte rules WebRTC out, so HTTP is never delayed.
func classify(head []byte) sniffVerdict {
	var want = [sniffHeaderBytes]byte{2: 0x00, 3: 0x01, 6: 0x21, 7: 0x12, 8: 0xA4, 9: 0x42}
	for i, b := range head {
		if i >= sniffHeaderBytes {
			break
		}
		if i >= 2 && i != 4 && i != 5 && b != want[i] {
			return sniffOther
		}
	}
	if len(head) < sniffHeaderBytes {
		return sniffMore
	}
	frameLen := int(binary.BigEndian.Uint16(head))
	stunLen := int(binary.BigEndian.Uint16(head[4:]))
	if frameLen != stunLen+stunHeader {
		return sniffOther
	}
	return sniffWebRTC
}
