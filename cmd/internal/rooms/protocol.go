package rooms

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// Actions a client sends in msg.action.
const (
	ActionJoin    = "join"
	ActionPublish = "publish"
	ActionLeave   = "leave"
	ActionPing    = "ping"
)

// Actions only the server sends.
const (
	ActionNotify = "notify"
	ActionError  = "error"
	ActionPong   = "pong"
)

// Envelope is every message on the socket, both ways: tid ties a reply to
// its request (a notify has none), msg is the payload. It is the shape of
// SRS's signaling (github.com/ossrs/signaling).
type Envelope struct {
	TID string  `json:"tid,omitempty"`
	Msg Message `json:"msg"`
}

// Message is the payload of an Envelope. Clients fill Action, Room,
// Display and optionally Max; the server answers with the same action and
// fills Self and Participants, or Error, and notifies the room with Event
// and Peer.
type Message struct {
	Action  string `json:"action"`
	Room    string `json:"room,omitempty"`
	Display string `json:"display,omitempty"`
	// Max asks for a smaller room: it applies when the join creates the
	// room (the one-to-one demo asks for 2), clamped to the service's cap.
	Max int `json:"max,omitempty"`

	Self         *Participant  `json:"self,omitempty"`
	Participants []Participant `json:"participants,omitempty"`
	Event        string        `json:"event,omitempty"`
	Peer         *Participant  `json:"peer,omitempty"`
	Error        string        `json:"error,omitempty"`
}

// Participant is one member of a room as the others see it.
type Participant struct {
	Display    string `json:"display"`
	Publishing bool   `json:"publishing"`
}

// namePattern bounds room and display names: they become parts of stream
// names (app=room, stream=<room>-<display>), so URL-safe and short.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func checkName(what, v string) error {
	if !namePattern.MatchString(v) {
		return fmt.Errorf("%w: %s %q must be 1 to 32 of A-Z a-z 0-9 _ -", ErrBadRequest, what, v)
	}
	return nil
}

func encode(e Envelope) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic("rooms: marshal envelope: " + err.Error()) // only strings, bools and ints
	}
	return b
}
