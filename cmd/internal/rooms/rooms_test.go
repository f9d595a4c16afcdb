package rooms

import (
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// peer is a test client over a real WebSocket.
type peer struct {
	t  *testing.T
	ws *websocket.Conn
}

func startService(t *testing.T, cfg Config) (*Service, string) {
	t.Helper()
	base := runtime.NumGoroutine()
	svc := New(cfg)
	hs := httptest.NewServer(svc)
	t.Cleanup(func() {
		hs.Close()
		svc.Close()
		checkGoroutines(t, base)
	})
	return svc, "ws" + strings.TrimPrefix(hs.URL, "http") + "/sig/v1/rtc"
}

// checkGoroutines waits for the goroutine count to come back to base.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d, want %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, url string) *peer {
	t.Helper()
	ws, err := websocket.Dial(url, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &peer{t: t, ws: ws}
}

func (p *peer) send(tid string, m Message) {
	p.t.Helper()
	b, _ := json.Marshal(Envelope{TID: tid, Msg: m})
	if err := websocket.Message.Send(p.ws, string(b)); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *peer) recv() Envelope {
	p.t.Helper()
	_ = p.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var s string
	if err := websocket.Message.Receive(p.ws, &s); err != nil {
		p.t.Fatalf("receive: %v", err)
	}
	var e Envelope
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		p.t.Fatalf("message %q: %v", s, err)
	}
	return e
}

// expect reads one message and checks its action, event and the members.
func (p *peer) expect(action, event string, members ...string) Envelope {
	p.t.Helper()
	e := p.recv()
	if e.Msg.Action != action || e.Msg.Event != event {
		p.t.Fatalf("got %+v, want action %q event %q", e, action, event)
	}
	if got := names(e.Msg.Participants); strings.Join(got, ",") != strings.Join(members, ",") {
		p.t.Fatalf("%s %s: participants %v, want %v", action, event, got, members)
	}
	return e
}

func (p *peer) join(room, display string, limit int, members ...string) {
	p.t.Helper()
	p.send("j-"+display, Message{Action: ActionJoin, Room: room, Display: display, Max: limit})
	r := p.expect(ActionJoin, "", members...)
	if r.TID != "j-"+display || r.Msg.Self == nil || r.Msg.Self.Display != display || r.Msg.Room != room {
		p.t.Fatalf("join reply %+v", r)
	}
	p.expect(ActionNotify, ActionJoin, members...)
}

func names(ps []Participant) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Display
		if p.Publishing {
			out[i] += "*"
		}
	}
	return out
}

// TestJoinPublishLeave follows two participants through a room's life.
func TestJoinPublishLeave(t *testing.T) {
	svc, url := startService(t, Config{})
	alice, bob := dial(t, url), dial(t, url)

	alice.join("r1", "alice", 0, "alice")
	bob.join("r1", "bob", 0, "alice", "bob")
	if e := alice.expect(ActionNotify, ActionJoin, "alice", "bob"); e.Msg.Peer.Display != "bob" || e.Msg.Room != "r1" {
		t.Fatalf("alice's notify: %+v", e)
	}

	bob.send("p", Message{Action: ActionPublish})
	if r := bob.expect(ActionPublish, "", "alice", "bob*"); !r.Msg.Self.Publishing {
		t.Fatalf("publish reply: %+v", r)
	}
	bob.expect(ActionNotify, ActionPublish, "alice", "bob*")
	alice.expect(ActionNotify, ActionPublish, "alice", "bob*")

	alice.send("x", Message{Action: ActionPing})
	if e := alice.recv(); e.Msg.Action != ActionPong || e.TID != "x" {
		t.Fatalf("ping: %+v", e)
	}

	// Bob's socket goes away without a word: Alice hears he left.
	_ = bob.ws.Close()
	if e := alice.expect(ActionNotify, ActionLeave, "alice"); e.Msg.Peer.Display != "bob" || !e.Msg.Peer.Publishing {
		t.Fatalf("leave notify: %+v", e)
	}

	alice.send("l", Message{Action: ActionLeave})
	alice.expect(ActionLeave, "")
	waitStats(t, svc, func(s Stats) bool { return s.Rooms == 0 && s.Conns == 1 })
}

// TestRoomCap: the service cap, a smaller cap asked by the first joiner,
// duplicate names and bad names are refused with an error reply.
func TestRoomCap(t *testing.T) {
	_, url := startService(t, Config{MaxParticipants: 3})
	a, b, c, d := dial(t, url), dial(t, url), dial(t, url), dial(t, url)
	a.join("big", "a", 10, "a") // asks for more than the cap: gets 3
	b.join("big", "b", 0, "a", "b")
	c.join("big", "c", 0, "a", "b", "c")
	d.send("j", Message{Action: ActionJoin, Room: "big", Display: "d"})
	if e := d.recv(); e.Msg.Action != ActionError || e.TID != "j" || !strings.Contains(e.Msg.Error, ErrRoomFull.Error()) {
		t.Fatalf("fourth join: %+v", e)
	}

	// One-to-one: the first joiner asks for 2.
	d.join("pair", "d", 2, "d")
	a2 := dial(t, url)
	a2.join("pair", "e", 0, "d", "e")
	b2 := dial(t, url)
	for _, m := range []struct{ room, display, want string }{
		{"pair", "f", ErrRoomFull.Error()},
		{"other", "bad name", ErrBadRequest.Error()},
		{"", "x", ErrBadRequest.Error()},
		{strings.Repeat("r", 33), "x", ErrBadRequest.Error()},
	} {
		b2.send("j", Message{Action: ActionJoin, Room: m.room, Display: m.display})
		if e := b2.recv(); e.Msg.Action != ActionError || !strings.Contains(e.Msg.Error, m.want) {
			t.Errorf("join %q as %q: %+v, want error %q", m.room, m.display, e, m.want)
		}
	}
	b2.send("j", Message{Action: ActionJoin, Room: "big", Display: "a"})
	if e := b2.recv(); e.Msg.Action != ActionError {
		t.Errorf("join of a full room with a taken name: %+v", e)
	}
	b2.send("p", Message{Action: ActionPublish})
	if e := b2.recv(); e.Msg.Error != ErrNotJoined.Error() {
		t.Errorf("publish before join: %+v", e)
	}
}

// TestBounds: too many sockets get 503, an oversize frame closes the socket.
func TestBounds(t *testing.T) {
	svc, url := startService(t, Config{MaxConns: 2, MaxMessageBytes: 256})
	a := dial(t, url)
	dial(t, url)
	if ws, err := websocket.Dial(url, "", "http://127.0.0.1/"); err == nil {
		_ = ws.Close()
		t.Fatal("third socket accepted with MaxConns 2")
	}
	a.send("big", Message{Action: ActionJoin, Room: "r", Display: strings.Repeat("x", 300)})
	_ = a.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var s string
	if err := websocket.Message.Receive(a.ws, &s); err == nil {
		t.Fatalf("socket still open after an oversize frame; got %q", s)
	}
	waitStats(t, svc, func(s Stats) bool { return s.DroppedOversize == 1 && s.Rejected == 1 && s.Conns == 1 })
}

// TestSlowClientDropped: a full write queue drops that client, not the
// sender.
func TestSlowClientDropped(t *testing.T) {
	svc := New(Config{QueueLen: 2})
	c := &client{queue: make(chan []byte, 2), done: make(chan struct{})}
	for range 3 {
		c.send(svc, []byte("{}"))
	}
	select {
	case <-c.done:
	default:
		t.Fatal("client with a full queue was not dropped")
	}
	if s := svc.Stats(); s.DroppedSlow != 1 {
		t.Fatalf("DroppedSlow = %d, want 1", s.DroppedSlow)
	}
	c.send(svc, []byte("{}")) // a dropped client takes no more and does not block
}

// TestCloseEndsSockets: Close ends open sockets and refuses new ones.
func TestCloseEndsSockets(t *testing.T) {
	svc, url := startService(t, Config{})
	a := dial(t, url)
	a.join("r", "a", 0, "a")
	svc.Close()
	_ = a.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var s string
	if err := websocket.Message.Receive(a.ws, &s); err == nil {
		t.Fatalf("socket open after Close; got %q", s)
	}
	if ws, err := websocket.Dial(url, "", "http://127.0.0.1/"); err == nil {
		_ = ws.Close()
		t.Fatal("socket accepted after Close")
	}
}

func waitStats(t *testing.T, svc *Service, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !ok(svc.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", svc.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
