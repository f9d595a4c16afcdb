// Package rtmptest is an RTMP client written by hand on gortmplib's
// packages, for tests that must send exactly the connect command an
// outside tool sends (a tcUrl and no app, SRS's URL forms), which no
// library client lets them do. It is imported by tests only (bridge/rtmp,
// cmd/internal/node).
package rtmptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/fanout/fanout/bridge/flv"
)

// StreamID is the message stream id createStream hands out on Fanout's
// server (and the one Publish and Play go on).
const StreamID = 0x1000000

// Client is one RTMP connection after the handshake. Only the test
// goroutine and, while it runs, PumpFLV use it.
type Client struct {
	c   net.Conn
	bc  *bytecounter.ReadWriter
	mrw *message.ReadWriter
}

// Dial connects to addr and does the RTMP handshake; the connection
// closes when the test ends, and every read or write fails after 30 s.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := DialFrom(t, "", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// DialFrom is Dial from the local IP src ("" for any), returning an error
// rather than failing the test (a server may refuse the connection).
func DialFrom(t testing.TB, src, addr string) (*Client, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	bc := bytecounter.NewReadWriter(c)
	if _, _, err := handshake.DoClient(bc, false, false); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("rtmp handshake: %w", err)
	}
	return &Client{c: c, bc: bc, mrw: message.NewReadWriter(bc, bc, false)}, nil
}

// Close drops the connection, as a player that goes away does.
func (c *Client) Close() error { return c.c.Close() }

// Command sends an AMF0 command on chunk stream csid, message stream msid.
func (c *Client) Command(t testing.TB, csid byte, msid uint32, name string, id int, args ...any) {
	t.Helper()
	err := c.mrw.Write(&message.CommandAMF0{ChunkStreamID: csid, MessageStreamID: msid, Name: name,
		CommandID: id, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Reply reads commands until one named _result, _error or onStatus and
// returns its name and the code of its info object.
func (c *Client) Reply(t testing.TB) (name, code string) {
	t.Helper()
	for {
		msg, err := c.mrw.Read()
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		cmd, ok := msg.(*message.CommandAMF0)
		if !ok || cmd.Name != "_result" && cmd.Name != "_error" && cmd.Name != "onStatus" {
			continue
		}
		for _, a := range cmd.Arguments {
			if o, ok := a.(amf0.Object); ok {
				if v, ok := o.GetString("code"); ok {
					code = v
				}
			}
		}
		return cmd.Name, code
	}
}

// PumpFLV publishes an FLV file's audio and video tags on StreamID in real
// time; it returns nil at the end of the file.
func (c *Client) PumpFLV(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := flv.NewReader(f)
	if _, _, err := r.ReadHeader(); err != nil {
		return err
	}
	w := rawmessage.NewWriter(c.bc, c.bc.Writer, false)
	start := time.Now()
	for ctx.Err() == nil {
		tag, err := r.ReadTag()
		if err != nil {
			return nil // end of file
		}
		csid := byte(message.VideoChunkStreamID)
		switch tag.Type {
		case flv.TagVideo:
		case flv.TagAudio:
			csid = message.AudioChunkStreamID
		default:
			continue
		}
		ts := time.Duration(tag.Timestamp) * time.Millisecond
		time.Sleep(time.Until(start.Add(ts)))
		if err := w.Write(&rawmessage.Message{ChunkStreamID: csid, Timestamp: ts, Type: uint8(tag.Type),
			MessageStreamID: StreamID, Body: tag.Body}); err != nil {
			return err
		}
	}
	return ctx.Err()
}
