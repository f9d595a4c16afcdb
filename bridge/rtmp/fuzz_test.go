package rtmp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/fanout/fanout/bridge/hub"
)

// FuzzServerConn feeds an arbitrary byte stream to one server connection
// (handshake, chunk stream, commands, media) as a client that sends it all
// and then half-closes: the handler neither panics nor hangs, and returns
// at the end of the input.
func FuzzServerConn(f *testing.F) {
	f.Add(rtmpSeed(f, true))
	f.Add(rtmpSeed(f, false))
	f.Add([]byte{3})
	f.Add(append([]byte{6}, make([]byte, 1536)...)) // RTMPE
	h := hub.New(hub.Config{})
	f.Cleanup(h.Close)
	s := NewServer(Config{Hub: h, Timeout: 2 * time.Second, Wait: 5 * time.Millisecond})
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.handle(&replayConn{r: bytes.NewReader(data)})
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the connection handler did not return at the end of its input")
		}
	})
}

// replayConn is a client that has sent its bytes and half-closed: reads
// return them and then EOF, writes are taken and dropped.
type replayConn struct {
	net.Conn // nil: only the methods below are called
	r        *bytes.Reader
}

func (c *replayConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *replayConn) Close() error                { return nil }
func (c *replayConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1935}
}
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// rtmpSeed is what a client sends to publish (H.264 sequence header, one
// frame, AAC config) or to play stream live/s: a plain handshake (C0, C1,
// C2; the server does not check C2), then connect, createStream and the
// publish or play command in chunks.
func rtmpSeed(t testing.TB, publish bool) []byte {
	var out bytes.Buffer
	out.WriteByte(3)
	out.Write(make([]byte, 2*1536))
	bc := bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(nil), &out})
	mrw := message.NewReadWriter(bc, bc, false)
	msgs := []message.Message{
		&message.CommandAMF0{ChunkStreamID: 3, Name: "connect", CommandID: 1,
			Arguments: []any{amf0.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://h/live"}}}},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "createStream", CommandID: 2, Arguments: []any{nil}},
	}
	if publish {
		msgs = append(msgs, &message.CommandAMF0{ChunkStreamID: 8, MessageStreamID: streamID, Name: "publish",
			CommandID: 3, Arguments: []any{nil, "s", "live"}})
	} else {
		msgs = append(msgs, &message.CommandAMF0{ChunkStreamID: 8, MessageStreamID: streamID, Name: "play",
			CommandID: 3, Arguments: []any{nil, "s"}})
	}
	for _, m := range msgs {
		if err := mrw.Write(m); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	if !publish {
		return out.Bytes()
	}
	// FLV tag bodies: AVC sequence header, one IDR, AAC config.
	w := rawmessage.NewWriter(bc, bc.Writer, false)
	type tag struct {
		csid byte
		typ  uint8
		body []byte
	}
	tags := []tag{
		{message.VideoChunkStreamID, 9, []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1f, 1, 0, 2, 0x68, 0xce}},
		{message.AudioChunkStreamID, 8, []byte{0xaf, 0, 0x12, 0x10}},
	}
	for range 12 {
		tags = append(tags, tag{message.VideoChunkStreamID, 9, []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0, 0x33}},
			tag{message.AudioChunkStreamID, 8, []byte{0xaf, 1, 0x21, 0x10, 0x04}})
	}
	for i, m := range tags {
		err := w.Write(&rawmessage.Message{ChunkStreamID: m.csid, Timestamp: time.Duration(i) * 200 * time.Millisecond,
			Type: m.typ, MessageStreamID: streamID, Body: m.body})
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	return out.Bytes()
}
