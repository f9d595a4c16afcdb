// Package rooms is the small WebSocket signaling service behind Fanout's
// demos (/demos/one2one.html and /demos/room.html), in the place of SRS's
// separate signaling server (github.com/ossrs/signaling). It only keeps
// rooms → participants and tells every member who joined, who publishes
// and who left; the media goes through WHIP/WHEP as app=<room>,
// stream=<room>-<display>, so the service never sees SDP.
//
// Protocol: JSON text frames, one Envelope each, {"tid":…, "msg":{…}}.
// A client sends
//
//	{"tid":"1","msg":{"action":"join","room":"r","display":"alice","max":2}}
//	{"tid":"2","msg":{"action":"publish"}}   // after its WHIP session is up
//	{"tid":"3","msg":{"action":"leave"}}     // or just closes the socket
//	{"tid":"4","msg":{"action":"ping"}}      // keeps an idle socket open
//
// and gets a reply with the same tid and action (self and participants
// filled), {"action":"pong"}, or {"action":"error","error":"…"}. Every
// member of the room, the sender too, gets
// {"msg":{"action":"notify","event":"join|publish|leave","room":…,"peer":{…},"participants":[…]}}.
//
// Bounds: connections, rooms and participants per room are capped; a frame
// over Config.MaxMessageBytes closes the socket; each connection has a
// bounded write queue, and a client whose queue is full is dropped (its
// socket closed, the room told it left) rather than slowing the others. An
// idle socket closes after Config.IdleTimeout.
//
// Only cmd imports it (internal; it needs only the standard library and
// golang.org/x/net/websocket); cmd/internal/node mounts it at /sig/v1/rtc.
// Concurrency: one Service lock guards rooms and membership and is never
// held across socket I/O; every connection has a reader (the HTTP handler
// goroutine) and a writer goroutine that the reader starts and waits for;
// Close closes every socket and waits for all of them.
package rooms

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

// Config bounds the service; zero fields take the defaults.
type Config struct {
	MaxConns        int           // open sockets; default 1024
	MaxRooms        int           // default 256
	MaxParticipants int           // per room; default 16
	MaxMessageBytes int           // largest frame accepted; default 4096
	QueueLen        int           // per-connection write queue; default 64
	IdleTimeout     time.Duration // no frame for this long closes; default 90 s
	WriteTimeout    time.Duration // one frame write; default 5 s
	Logger          *slog.Logger
}

func (c *Config) defaults() {
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&c.MaxConns, 1024)
	setInt(&c.MaxRooms, 256)
	setInt(&c.MaxParticipants, 16)
	setInt(&c.MaxMessageBytes, 4096)
	setInt(&c.QueueLen, 64)
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats are the service's counters.
type Stats struct {
	Conns, Rooms    int
	Rejected        uint64 // sockets refused by MaxConns or while closing
	DroppedSlow     uint64 // clients dropped because their queue was full
	DroppedOversize uint64 // sockets closed for a frame over MaxMessageBytes
}

// Service is the signaling service; it is an http.Handler.
type Service struct {
	cfg Config
	ws  websocket.Server

	mu      sync.Mutex
	closed  bool
	conns   map[*client]struct{}
	pending int // upgrades in progress, counted against MaxConns
	rooms   map[string]*room
	wg      sync.WaitGroup

	rejected, droppedSlow, droppedOversize atomic.Uint64
}

type room struct {
	name    string
	max     int
	members []*client // in join order
}

// client is one socket. room and self are guarded by Service.mu.
type client struct {
	ws    *websocket.Conn
	queue chan []byte
	done  chan struct{}
	once  sync.Once
	room  *room
	self  Participant
}

// New makes a service; mount it on a mux and Close it on shutdown.
func New(cfg Config) *Service {
	cfg.defaults()
	s := &Service{cfg: cfg, conns: map[*client]struct{}{}, rooms: map[string]*room{}}
	// Any origin may connect: the service holds no credentials and rooms
	// are public by name, as with SRS's signaling server.
	s.ws = websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler:   s.serveConn,
	}
	return s
}

// ServeHTTP upgrades to a WebSocket when a connection slot is free.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed || len(s.conns)+s.pending >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.rejected.Add(1)
		http.Error(w, "signaling: too many connections", http.StatusServiceUnavailable)
		return
	}
	s.pending++
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.ws.ServeHTTP(w, r)
}

// serveConn is the reader: it owns the socket until it returns.
func (s *Service) serveConn(ws *websocket.Conn) {
	ws.MaxPayloadBytes = s.cfg.MaxMessageBytes
	c := &client{ws: ws, queue: make(chan []byte, s.cfg.QueueLen), done: make(chan struct{})}
	s.mu.Lock()
	s.pending--
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(c)
	}()
	err := s.readLoop(c)
	c.kill()
	<-writerDone
	s.mu.Lock()
	left := s.leaveLocked(c)
	delete(s.conns, c)
	s.mu.Unlock()
	if left != nil {
		s.cfg.Logger.Debug("signaling: participant left", "room", left.name, "display", c.self.Display, "err", err)
	}
}

func (s *Service) readLoop(c *client) error {
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		var frame []byte
		if err := websocket.Message.Receive(c.ws, &frame); err != nil {
			if errors.Is(err, websocket.ErrFrameTooLarge) {
				s.droppedOversize.Add(1)
			}
			return err
		}
		var env Envelope
		if err := json.Unmarshal(frame, &env); err != nil {
			c.send(s, encode(Envelope{Msg: Message{Action: ActionError, Error: "bad request: " + err.Error()}}))
			continue
		}
		if env.Msg.Action == ActionLeave {
			s.mu.Lock()
			s.leaveLocked(c)
			s.mu.Unlock()
			c.send(s, encode(Envelope{TID: env.TID, Msg: Message{Action: ActionLeave}}))
			continue
		}
		s.handle(c, env)
	}
}

// handle runs one request; the reply is queued before any notify, so a
// client sees its join answered before the room's join event.
func (s *Service) handle(c *client, env Envelope) {
	reply := Envelope{TID: env.TID, Msg: Message{Action: env.Msg.Action}}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	var event string
	switch env.Msg.Action {
	case ActionPing:
		reply.Msg.Action = ActionPong
	case ActionJoin:
		err = s.joinLocked(c, env.Msg)
		event = ActionJoin
	case ActionPublish:
		if c.room == nil {
			err = ErrNotJoined
		} else {
			c.self.Publishing = true
			event = ActionPublish
		}
	default:
		err = fmt.Errorf("%w: unknown action %q", ErrBadRequest, env.Msg.Action)
	}
	if err != nil {
		c.send(s, encode(Envelope{TID: env.TID, Msg: Message{Action: ActionError, Error: err.Error()}}))
		return
	}
	if c.room != nil && env.Msg.Action != ActionPing {
		self := c.self
		reply.Msg.Room, reply.Msg.Self, reply.Msg.Participants = c.room.name, &self, c.room.list()
	}
	c.send(s, encode(reply))
	if event != "" {
		s.notifyLocked(c.room, event, c.self)
	}
}

func (s *Service) joinLocked(c *client, m Message) error {
	if c.room != nil {
		return ErrJoined
	}
	if err := checkName("room", m.Room); err != nil {
		return err
	}
	if err := checkName("display", m.Display); err != nil {
		return err
	}
	r := s.rooms[m.Room]
	if r == nil {
		if len(s.rooms) >= s.cfg.MaxRooms {
			return ErrTooMany
		}
		limit := s.cfg.MaxParticipants
		if m.Max > 0 && m.Max < limit {
			limit = m.Max
		}
		r = &room{name: m.Room, max: limit}
		s.rooms[m.Room] = r
	}
	if len(r.members) >= r.max {
		if len(r.members) == 0 {
			delete(s.rooms, r.name)
		}
		return fmt.Errorf("%w: %s already has its maximum of %d", ErrRoomFull, r.name, r.max)
	}
	for _, o := range r.members {
		if o.self.Display == m.Display {
			return ErrNameTaken
		}
	}
	c.room, c.self = r, Participant{Display: m.Display}
	r.members = append(r.members, c)
	return nil
}

// leaveLocked takes c out of its room, tells the others, and drops an
// empty room. It returns the room c left, if any.
func (s *Service) leaveLocked(c *client) *room {
	r := c.room
	if r == nil {
		return nil
	}
	c.room = nil
	r.members = slices.DeleteFunc(r.members, func(o *client) bool { return o == c })
	if len(r.members) == 0 {
		delete(s.rooms, r.name)
		return r
	}
	s.notifyLocked(r, ActionLeave, c.self)
	return r
}

func (s *Service) notifyLocked(r *room, event string, peer Participant) {
	msg := encode(Envelope{Msg: Message{
		Action: ActionNotify, Event: event, Room: r.name, Peer: &peer, Participants: r.list(),
	}})
	for _, o := range r.members {
		o.send(s, msg)
	}
}

func (r *room) list() []Participant {
	out := make([]Participant, len(r.members))
	for i, c := range r.members {
		out[i] = c.self
	}
	return out
}

// send queues msg without blocking; a full queue drops the client.
func (c *client) send(s *Service, msg []byte) {
	select {
	case <-c.done:
	case c.queue <- msg:
	default:
		s.droppedSlow.Add(1)
		s.cfg.Logger.Warn("signaling: dropping a slow client", "display", c.self.Display, "queue", cap(c.queue))
		c.kill()
	}
}

// kill tells the writer to close the socket; the reader then fails and
// cleans up. It never touches the socket itself, so it is safe under the
// Service lock even when the client's writes are stuck.
func (c *client) kill() {
	c.once.Do(func() { close(c.done) })
}

// writeLoop is the only writer of the socket, and the one that closes it.
func (s *Service) writeLoop(c *client) {
	defer func() {
		// Close writes a close frame: bound it like any other write.
		_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.ws.Close()
	}()
	for {
		select {
		case <-c.done:
			return
		case msg := <-c.queue:
			_ = c.ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if err := websocket.Message.Send(c.ws, string(msg)); err != nil {
				c.kill()
				return
			}
		}
	}
}

// Stats reads the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	conns, rooms := len(s.conns), len(s.rooms)
	s.mu.Unlock()
	return Stats{
		Conns: conns, Rooms: rooms, Rejected: s.rejected.Load(),
		DroppedSlow: s.droppedSlow.Load(), DroppedOversize: s.droppedOversize.Load(),
	}
}

// Close refuses new sockets, closes the open ones and waits for their
// goroutines.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
