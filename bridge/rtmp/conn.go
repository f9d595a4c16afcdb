package rtmp

import (
	"crypto/rc4"
	"fmt"
	"io"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// streamID is the message stream createStream hands out; gortmplib's
// chunk writer puts MessageStreamID on the wire big-endian where RTMP
// wants little-endian, so stream 1 is written as 0x1000000 (as its own
// ServerConn and Writer do).
const streamID = 0x1000000

// conn is the server side of one RTMP connection up to publish or play:
// handshake, connect, createStream and the publish/play command, done the
// way SRS does it (see the package doc for why not gortmplib.ServerConn).
// After that it is the gortmplib.Conn that gortmplib's Reader and Writer
// carry media over.
type conn struct {
	bc  *bytecounter.ReadWriter
	mrw *message.ReadWriter

	connectCSID byte // the connect command's chunk stream and id
	connectID   int
	tcURL       string

	cmd     *message.CommandAMF0 // the publish or play command
	Publish bool
	Stream  string // its stream name, with any ?query
}

// handshake runs the RTMP handshake (plain, digest or RTMPE) and reads the
// connect command.
func (c *conn) handshake(rw io.ReadWriter) error {
	c.bc = bytecounter.NewReadWriter(rw)
	keyIn, keyOut, err := handshake.DoServer(c.bc, false)
	if err != nil {
		return fmt.Errorf("rtmp handshake: %w", err)
	}
	var mrw io.ReadWriter = c.bc
	if keyIn != nil {
		if mrw, err = newRC4(c.bc, keyIn, keyOut); err != nil {
			return fmt.Errorf("rtmpe: %w", err)
		}
	}
	c.mrw = message.NewReadWriter(mrw, c.bc, false)
	cmd, err := c.readCommand()
	if err != nil {
		return err
	}
	if cmd.Name != "connect" {
		return fmt.Errorf("%w: %q before connect", ErrBadConnect, cmd.Name)
	}
	c.connectCSID, c.connectID = cmd.ChunkStreamID, cmd.CommandID
	return c.connect(cmd)
}

// connect takes the tcUrl from the command object. As in SRS the app comes
// from the tcUrl alone (clients may send no `app`); a connect without a
// tcUrl is rejected with NetConnection.Connect.Rejected.
func (c *conn) connect(cmd *message.CommandAMF0) error {
	var obj amf0.Object
	if len(cmd.Arguments) > 0 {
		switch o := cmd.Arguments[0].(type) {
		case amf0.Object:
			obj = o
		case amf0.ECMAArray:
			obj = amf0.Object(o)
		}
	}
	tc, ok := obj.GetString("tcUrl")
	if !ok {
		tc, ok = obj.GetString("tcurl")
	}
	if !ok || tc == "" {
		_ = c.reject("NetConnection.Connect.Rejected", "connect needs a tcUrl")
		return fmt.Errorf("%w: no tcUrl", ErrBadConnect)
	}
	c.tcURL = trimQuotes(tc)
	return nil
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}

// accept answers connect and serves commands until publish or play, which
// it records without answering (startPublish, startPlay or refuse do).
func (c *conn) accept() error {
	for _, m := range []message.Message{
		&message.SetWindowAckSize{Value: 2500000},
		&message.SetPeerBandwidth{Value: 2500000, Type: 2},
		&message.SetChunkSize{Value: 65536},
		&message.CommandAMF0{ChunkStreamID: c.connectCSID, Name: "_result", CommandID: c.connectID,
			Arguments: []any{
				amf0.Object{{Key: "fmsVer", Value: "FMS/3,5,3,888"}, {Key: "capabilities", Value: float64(127)},
					{Key: "mode", Value: float64(1)}},
				amf0.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetConnection.Connect.Success"},
					{Key: "description", Value: "Connection succeeded"}, {Key: "objectEncoding", Value: float64(0)}},
			}},
	} {
		if err := c.mrw.Write(m); err != nil {
			return err
		}
	}
	for {
		cmd, err := c.readCommand()
		if err != nil {
			return err
		}
		switch cmd.Name {
		case "createStream":
			err = c.mrw.Write(&message.CommandAMF0{ChunkStreamID: cmd.ChunkStreamID, Name: "_result",
				CommandID: cmd.CommandID, Arguments: []any{nil, float64(1)}})
			if err != nil {
				return err
			}
		case "publish", "play":
			name, ok := "", len(cmd.Arguments) >= 2
			if ok {
				name, ok = cmd.Arguments[1].(string)
			}
			if !ok {
				return fmt.Errorf("%w: %s without a stream name", ErrBadConnect, cmd.Name)
			}
			c.cmd, c.Publish, c.Stream = cmd, cmd.Name == "publish", name
			return nil
		}
	}
}

// startPublish tells a publisher it may send media.
func (c *conn) startPublish() error {
	return c.status("status", "NetStream.Publish.Start", "publish start")
}

// startPlay tells a player its stream begins.
func (c *conn) startPlay() error {
	if err := c.mrw.Write(&message.UserControlStreamIsRecorded{StreamID: 1}); err != nil {
		return err
	}
	if err := c.mrw.Write(&message.UserControlStreamBegin{StreamID: 1}); err != nil {
		return err
	}
	for _, s := range [][2]string{{"NetStream.Play.Reset", "play reset"}, {"NetStream.Play.Start", "play start"},
		{"NetStream.Data.Start", "data start"}, {"NetStream.Play.PublishNotify", "publish notify"}} {
		if err := c.status("status", s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// refuse answers the publish or play command (or connect) with an error.
func (c *conn) refuse(code, desc string) error {
	if c.cmd == nil {
		return c.reject(code, desc)
	}
	return c.status("error", code, desc)
}

func (c *conn) reject(code, desc string) error {
	return c.mrw.Write(&message.CommandAMF0{ChunkStreamID: c.connectCSID, Name: "_error", CommandID: c.connectID,
		Arguments: []any{nil, amf0.Object{{Key: "level", Value: "error"}, {Key: "code", Value: code},
			{Key: "description", Value: desc}}}})
}

func (c *conn) status(level, code, desc string) error {
	return c.mrw.Write(&message.CommandAMF0{ChunkStreamID: 5, MessageStreamID: streamID, Name: "onStatus",
		CommandID: c.cmd.CommandID, Arguments: []any{nil, amf0.Object{{Key: "level", Value: level},
			{Key: "code", Value: code}, {Key: "description", Value: desc}}}})
}

// readCommand skips control messages up to the next AMF0 command.
func (c *conn) readCommand() (*message.CommandAMF0, error) {
	for {
		msg, err := c.mrw.Read()
		if err != nil {
			return nil, err
		}
		if cmd, ok := msg.(*message.CommandAMF0); ok {
			return cmd, nil
		}
	}
}

// BytesReceived, BytesSent, Read and Write make conn a gortmplib.Conn.
func (c *conn) BytesReceived() uint64           { return c.bc.Reader.Count() }
func (c *conn) BytesSent() uint64               { return c.bc.Writer.Count() }
func (c *conn) Read() (message.Message, error)  { return c.mrw.Read() }
func (c *conn) Write(msg message.Message) error { return c.mrw.Write(msg) }

// rc4RW is RTMPE's RC4 layer over the byte stream (both directions skip
// the first 1536 bytes of keystream, as the handshake's peers do).
type rc4RW struct {
	rw      io.ReadWriter
	in, out *rc4.Cipher
}

func newRC4(rw io.ReadWriter, keyIn, keyOut []byte) (*rc4RW, error) {
	in, err := rc4.NewCipher(keyIn)
	if err != nil {
		return nil, err
	}
	out, err := rc4.NewCipher(keyOut)
	if err != nil {
		return nil, err
	}
	skip := make([]byte, 1536)
	in.XORKeyStream(skip, skip)
	out.XORKeyStream(skip, skip)
	return &rc4RW{rw: rw, in: in, out: out}, nil
}

func (r *rc4RW) Read(p []byte) (int, error) {
	n, err := r.rw.Read(p)
	r.in.XORKeyStream(p[:n], p[:n])
	return n, err
}

func (r *rc4RW) Write(p []byte) (int, error) {
	r.out.XORKeyStream(p, p)
	return r.rw.Write(p)
}
