package tcpio

import (
	"encoding/binary"
	"testing"
)

func TestNextFrame(t *testing.T) {
	tests := []struct {
		name   string
		buf    []byte
		max    int
		st     frameStatus
		n, len int
	}{
		{"empty", nil, 1500, frameShort, 0, 0},
		{"one byte", []byte{0}, 1500, frameShort, 0, 0},
		{"zero length", []byte{0, 0}, 1500, frameBadSize, 0, 0},
		{"header only", []byte{0, 3}, 1500, frameShort, 0, 0},
		{"partial", []byte{0, 3, 1, 2}, 1500, frameShort, 0, 0},
		{"complete", []byte{0, 3, 1, 2, 3, 9}, 1500, frameOK, 5, 3},
		{"max", append([]byte{0x05, 0xDC}, make([]byte, 1500)...), 1500, frameOK, 1502, 1500},
		{"over max", []byte{0x05, 0xDD}, 1500, frameBadSize, 0, 0},
		{"65535 allowed", append([]byte{0xFF, 0xFF}, make([]byte, 65535)...), 65535, frameOK, 65537, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, st := nextFrame(tt.buf, tt.max)
			if st != tt.st || n != tt.n || len(f) != tt.len {
				t.Fatalf("got st=%d n=%d len=%d, want %d %d %d", st, n, len(f), tt.st, tt.n, tt.len)
			}
		})
	}
}

// FuzzFramer feeds an arbitrary byte stream to the inbound parser in chunks
// (as TCP may cut it) and checks: no panic, no frame of 0 or > MaxFrame bytes,
// the first frame is a Binding Request, and the frames are exactly those a
// one-shot parse of the whole stream finds.
func FuzzFramer(f *testing.F) {
	req := framed(bindingRequest(f, "a:b"))
	f.Add(append(req, framed(payload(100, 1), payload(1500, 2))...), uint16(1500), uint8(7))
	f.Add(append(req, 0x05, 0xDD), uint16(1500), uint8(1))
	f.Add(req[:11], uint16(1500), uint8(3))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(1500), uint8(2))
	f.Add([]byte{0, 0}, uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, maxFrame uint16, chunk uint8) {
		max := int(maxFrame)
		if max == 0 {
			max = defaultMaxFrame
		}
		whole := parseAll(t, stream, max, len(stream)+1)
		pieces := parseAll(t, stream, max, int(chunk)+1)
		if len(whole) != len(pieces) {
			t.Fatalf("one-shot parse found %d frames, chunked %d", len(whole), len(pieces))
		}
		for i := range whole {
			if whole[i] != pieces[i] {
				t.Fatalf("frame %d differs between one-shot and chunked parse", i)
			}
		}
		_ = classify(stream)
	})
}

// parseAll runs the framer the way OnTraffic does over a stream arriving in
// chunk-byte reads, returning each frame as a string.
func parseAll(t *testing.T, stream []byte, max, chunk int) []string {
	fr := framer{maxFrame: max}
	var out []string
	var buf []byte
	for off := 0; off < len(stream); off += chunk {
		buf = append(buf, stream[off:min(off+chunk, len(stream))]...)
		consumed := 0
		for {
			frame, n, st := fr.next(buf[consumed:])
			if st == frameShort {
				break
			}
			if st != frameOK {
				return out // connection closed
			}
			if len(frame) == 0 || len(frame) > max || n != len(frame)+2 {
				t.Fatalf("frame of %d bytes (n=%d) with max %d", len(frame), n, max)
			}
			if len(out) == 0 && !isBindingRequest(frame) {
				t.Fatal("first frame delivered is not a Binding Request")
			}
			if int(binary.BigEndian.Uint16(buf[consumed:])) != len(frame) {
				t.Fatal("frame length differs from its prefix")
			}
			out = append(out, string(frame))
			consumed += n
		}
		buf = buf[consumed:]
	}
	return out
}
