package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/redis/go-redis/v9"
)

// emitterUID is the uid emitters publish under, as Node's
// @socket.io/redis-emitter does.
const emitterUID = "emitter"

// Emitter publishes to the sockets of a Redis backplane from a process that
// holds no sockets (a worker, a cron job), in the wire format of Node's
// @socket.io/redis-emitter, so roomcast and Node nodes both obey it. Its
// methods return a new Emitter; an Emitter may be reused and shared.
type Emitter struct {
	client   redis.UniversalClient
	prefix   string
	nsp      string
	rooms    []string
	except   []string
	volatile bool
}

// NewEmitter makes an emitter on the main namespace. prefix "": "socket.io".
func NewEmitter(client redis.UniversalClient, prefix string) *Emitter {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &Emitter{client: client, prefix: prefix, nsp: "/"}
}

func (e *Emitter) clone() *Emitter {
	c := *e
	c.rooms = slices.Clone(e.rooms)
	c.except = slices.Clone(e.except)
	return &c
}

// Of selects a namespace.
func (e *Emitter) Of(nsp string) *Emitter {
	c := e.clone()
	if nsp == "" || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	c.nsp, c.rooms, c.except = nsp, nil, nil
	return c
}

// To adds rooms; Except skips sockets in rooms; Volatile lets busy sockets
// drop the emit.
func (e *Emitter) To(rooms ...string) *Emitter {
	c := e.clone()
	c.rooms = append(c.rooms, rooms...)
	return c
}
func (e *Emitter) Except(rooms ...string) *Emitter {
	c := e.clone()
	c.except = append(c.except, rooms...)
	return c
}
func (e *Emitter) Volatile() *Emitter { c := e.clone(); c.volatile = true; return c }

// reserved are the event names socket.io clients keep for themselves.
var reserved = map[string]bool{"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true}

// ErrEventName refuses an empty or reserved event name.
var ErrEventName = errors.New("invalid event name")

// Emit publishes event with args to the selected sockets of every node.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	if event == "" || reserved[event] {
		return ErrEventName
	}
	data := append([]any{event}, args...)
	opts := toWire(Options{Rooms: e.rooms, Except: e.except, Volatile: e.volatile})
	b, err := encodeMsgpack([]any{emitterUID, map[string]any{"type": 2, "data": plain(data), "nsp": e.nsp}, opts})
	if err != nil {
		return err
	}
	ch := e.prefix + "#" + e.nsp + "#"
	if len(e.rooms) == 1 {
		ch += e.rooms[0] + "#"
	}
	return e.client.Publish(ctx, ch, b).Err()
}

func (e *Emitter) request(ctx context.Context, v map[string]any) error {
	v["opts"] = map[string]any{"rooms": orEmpty(e.rooms), "except": orEmpty(e.except)}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, e.prefix+"-request#"+e.nsp+"#", b).Err()
}

// SocketsJoin makes the selected sockets join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.request(ctx, map[string]any{"type": reqRemoteJoin, "rooms": rooms})
}

// SocketsLeave makes the selected sockets leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.request(ctx, map[string]any{"type": reqRemoteLeave, "rooms": rooms})
}

// DisconnectSockets disconnects the selected sockets.
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.request(ctx, map[string]any{"type": reqRemoteDisconnect, "close": close})
}

// ServerSideEmit sends an event to every node's namespace handlers.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if event == "" || reserved[event] {
		return ErrEventName
	}
	b, err := json.Marshal(map[string]any{"uid": emitterUID, "type": reqServerSideEmit, "data": plain(append([]any{event}, args...))})
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, e.prefix+"-request#"+e.nsp+"#", b).Err()
}
