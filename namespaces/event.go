package namespaces

import (
	"encoding/json"
	"fmt"
)

// EventHandler handles one incoming event.
type EventHandler func(ev *Event)

// Event is an incoming event.
type Event struct {
	Socket *Socket
	Name   string
	// Args are the decoded arguments: nil, bool, float64, string, []any,
	// map[string]any, []byte for binary attachments, and json.Number for a
	// number beyond float64 (1e400, which JavaScript reads as Infinity).
	// For exact integers, key order or your own types use Raw or Bind.
	Args  []any
	ackID int64
	acked bool

	data   []byte            // the packet's JSON array (event name first)
	binary bool              // data holds placeholders for attachments
	raw    []json.RawMessage // data split, on the first Raw
}

// WantsAck tells whether the client is waiting for an ack.
func (e *Event) WantsAck() bool { return e.ackID >= 0 }

// Ack answers the client's ack callback with args (once).
func (e *Event) Ack(args ...any) error {
	if e.ackID < 0 {
		return ErrNoAck
	}
	if e.acked {
		return ErrAckSent
	}
	e.acked = true
	return e.Socket.sendAck(e.ackID, args)
}

// Raw returns argument i as the client sent it: JSON text with its keys in
// their order and its numbers as written (with the msgpack parser, the
// argument encoded to JSON). Binary attachments appear as the
// protocol's placeholders ({"_placeholder":true,"num":n}); read them from
// Args. The error is ErrNoArgument when the event has fewer arguments.
func (e *Event) Raw(i int) (json.RawMessage, error) {
	if i < 0 || i >= len(e.Args) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoArgument, i, len(e.Args))
	}
	if e.data == nil { // from the msgpack parser: no JSON text
		b, err := json.Marshal(e.Args[i])
		return b, err
	}
	if e.raw == nil {
		var raw []json.RawMessage
		if err := json.Unmarshal(e.data, &raw); err != nil {
			return nil, err // cannot happen: the packet was valid JSON
		}
		e.raw = raw
	}
	if i+1 >= len(e.raw) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoArgument, i, len(e.Args))
	}
	return e.raw[i+1], nil
}

// Bind decodes argument i into v, as json.Unmarshal does from the client's
// JSON text (no precision lost on integers). With binary attachments it
// goes through Args instead, so []byte fields receive the attachments.
func (e *Event) Bind(i int, v any) error {
	if i < 0 || i >= len(e.Args) {
		return fmt.Errorf("%w: %d of %d", ErrNoArgument, i, len(e.Args))
	}
	if !e.binary && e.data != nil {
		raw, err := e.Raw(i)
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, v)
	}
	b, err := json.Marshal(e.Args[i])
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Bind decodes argument i of ev into a T (see Event.Bind):
//
//	msg, err := namespaces.Bind[Message](ev, 0)
func Bind[T any](ev *Event, i int) (T, error) {
	var v T
	err := ev.Bind(i, &v)
	return v, err
}
