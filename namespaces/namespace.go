package namespaces

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// ConnectMiddleware runs for each socket connecting to a namespace, before
// it is connected. A non-nil error refuses the connection: the client gets
// a connect_error with the error's message (and a *ConnectError's Data).
type ConnectMiddleware func(s *Socket) error

// EventMiddleware runs before the handler of each incoming event. A non-nil
// error stops the event; if the client asked for an ack it gets
// {"error": message}.
type EventMiddleware func(ev *Event) error

// Namespace is a Socket.IO namespace: its sockets, rooms and handlers.
type Namespace struct {
	srv     *Server
	name    string
	adapter adapter.Adapter
	log     *zap.Logger
	dynamic bool         // made from a pattern: removed when empty (Server.collect)
	holds   atomic.Int32 // CONNECTs running on it; changed under srv.mu

	mu        sync.RWMutex
	sockets   map[string]*Socket
	connectMW []ConnectMiddleware // serverMW then ownMW: what a CONNECT runs
	serverMW  []ConnectMiddleware // Server.Use
	ownMW     []ConnectMiddleware // Namespace.Use
	eventMW   []EventMiddleware
	onConnect []func(*Socket)

	serverHandlers map[string]ServerSideHandler
	handlers       map[string]EventHandler

	ackIDs atomic.Int64
	// Policy overrides the send queue policy of this namespace's events
	// (0: the connection's).
	policy clients.Policy
}

func newNamespace(s *Server, name string) *Namespace {
	n := &Namespace{srv: s, name: name, sockets: make(map[string]*Socket), log: s.log.With(zap.String("nsp", name))}
	n.adapter = s.cfg.Adapter(name, receiver{n}, s.cfg.RecoveryWindow)
	return n
}

// Name is the namespace's name, e.g. "/".
func (n *Namespace) Name() string { return n.name }

// Adapter is the namespace's adapter.
func (n *Namespace) Adapter() adapter.Adapter { return n.adapter }

// Use adds connect middleware (run after the Server's, see Server.Use).
func (n *Namespace) Use(mw ConnectMiddleware) {
	n.mu.Lock()
	n.ownMW = append(n.ownMW, mw)
	n.connectMW = n.middleware()
	n.mu.Unlock()
}

// middleware is the connect middleware chain, in a new slice (a CONNECT
// under way keeps the one it read). Called with n.mu held.
func (n *Namespace) middleware() []ConnectMiddleware {
	return append(append(make([]ConnectMiddleware, 0, len(n.serverMW)+len(n.ownMW)), n.serverMW...), n.ownMW...)
}

// UseEvent adds middleware run before every event handler of the
// namespace's sockets.
func (n *Namespace) UseEvent(mw EventMiddleware) {
	n.mu.Lock()
	n.eventMW = append(n.eventMW, mw)
	n.mu.Unlock()
}

// OnConnection registers fn, called for each socket once it is connected;
// it usually registers the socket's event handlers.
func (n *Namespace) OnConnection(fn func(*Socket)) {
	n.mu.Lock()
	n.onConnect = append(n.onConnect, fn)
	n.mu.Unlock()
}

// On registers a handler of an event for every socket of the namespace; a
// socket's own handler (Socket.On) comes first. Cheaper than registering
// the same handlers on each socket: nothing is kept per socket.
func (n *Namespace) On(event string, h EventHandler) {
	n.mu.Lock()
	if n.handlers == nil {
		n.handlers = make(map[string]EventHandler)
	}
	n.handlers[event] = h
	n.mu.Unlock()
}

// SetPolicy sets the send queue policy of this namespace's events.
func (n *Namespace) SetPolicy(p clients.Policy) {
	n.mu.Lock()
	n.policy = p
	n.mu.Unlock()
}

// Socket returns a connected local socket by id.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// Len is the number of local sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// Broadcast operators, starting from the whole namespace.
func (n *Namespace) To(rooms ...string) *Broadcast      { return n.all().To(rooms...) }
func (n *Namespace) Except(rooms ...string) *Broadcast  { return n.all().Except(rooms...) }
func (n *Namespace) Volatile() *Broadcast               { return n.all().Volatile() }
func (n *Namespace) Local() *Broadcast                  { return n.all().Local() }
func (n *Namespace) Timeout(d time.Duration) *Broadcast { return n.all().Timeout(d) }
func (n *Namespace) all() *Broadcast                    { return &Broadcast{nsp: n} }

// Emit sends event to every socket of the namespace (see Broadcast.Emit).
func (n *Namespace) Emit(ctx context.Context, event string, args ...any) error {
	return n.all().Emit(ctx, event, args...)
}

// EmitWithAck sends event to every socket of the namespace and gathers
// their answers (see Broadcast.EmitWithAck).
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	return n.all().EmitWithAck(ctx, event, args...)
}

func (n *Namespace) add(s *Socket) {
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

// receiver is the namespace's side of its adapter (Deliver is in
// broadcast.go, with the rest of a broadcast's path).
type receiver struct{ n *Namespace }

func (r receiver) Disconnect(id string, closeConn bool) {
	if s := r.n.Socket(id); s != nil {
		s.Disconnect(closeConn)
	}
}

func (r receiver) Describe(id string) (adapter.SocketInfo, bool) {
	s := r.n.Socket(id)
	if s == nil {
		return adapter.SocketInfo{}, false
	}
	s.mu.Lock()
	data := maps.Clone(s.data) // {} rather than null, as the reference
	if data == nil {
		data = map[string]any{}
	}
	s.mu.Unlock()
	return adapter.SocketInfo{ID: s.id, Handshake: s.handshake.info(), Rooms: s.Rooms(), Data: data}, true
}

func (r receiver) ServerSideEmit(data []any, ack func(any)) {
	if len(data) == 0 {
		return
	}
	name, _ := data[0].(string)
	r.n.mu.RLock()
	h := r.n.serverHandlers[name]
	r.n.mu.RUnlock()
	if h == nil {
		return
	}
	if ack == nil {
		ack = func(any) {}
	}
	h(data[1:], ack)
}

func (r receiver) NextAckID() int64 { return r.n.ackIDs.Add(1) - 1 }

// ServerSideHandler handles an event another node sent with
// ServerSideEmit; ack answers it (only the first call counts).
type ServerSideHandler func(args []any, ack func(any))

// OnServerSideEmit registers the handler of a server-side event.
func (n *Namespace) OnServerSideEmit(event string, h ServerSideHandler) {
	n.mu.Lock()
	if n.serverHandlers == nil {
		n.serverHandlers = make(map[string]ServerSideHandler)
	}
	n.serverHandlers[event] = h
	n.mu.Unlock()
}

// ServerSideEmit sends an event to the namespace's handlers on the other
// nodes.
func (n *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	_, err = n.adapter.ServerSideEmit(ctx, data, false)
	return err
}

// ServerSideEmitWithAck sends an event to the other nodes and returns one
// answer per node; on a timeout, what arrived with an error.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	data, err := eventData(event, args)
	if err != nil {
		return nil, err
	}
	return n.adapter.ServerSideEmit(ctx, data, true)
}

// FetchSockets describes the sockets of the namespace on every node.
func (n *Namespace) FetchSockets(ctx context.Context) ([]adapter.SocketInfo, error) {
	return n.all().FetchSockets(ctx)
}

// packet encodes a socket.io packet of this namespace. Encoding errors
// (values encoding/json cannot marshal) yield a nil packet; callers check
// values first through encodeData.
func (n *Namespace) packet(typ int, ackID int64, data []any, volatile bool, key string) *clients.Packet {
	p, err := n.valuePacket(typ, ackID, data, volatile, key)
	if err != nil {
		n.log.Error("cannot encode packet", zap.Error(err))
		return nil
	}
	return p
}

// valuePacket encodes a packet with the server's parser. data is the
// payload: the arguments of an EVENT or ACK, the object of a CONNECT or
// CONNECT_ERROR, nil for none.
func (n *Namespace) valuePacket(typ int, ackID int64, data any, volatile bool, key string) (*clients.Packet, error) {
	if n.srv.cfg.Parser == ParserMsgpack {
		b, err := encodeMsgpackPacket(typ, n.name, ackID, data)
		if err != nil {
			return nil, err
		}
		return n.framesPacket(typ, []clients.Frame{clients.NewFrame(true, b)}, volatile, key), nil
	}
	var raw []byte
	var bins [][]byte
	var err error
	switch {
	case data == nil:
	case typ == typeEvent || typ == typeAck:
		raw, bins, err = encodeData(data)
	default:
		raw, err = json.Marshal(data)
	}
	if err != nil {
		return nil, errorsJoinEncode(err)
	}
	return n.rawPacket(typ, ackID, raw, bins, volatile, key), nil
}

// rawPacket frames a packet of the JSON parser: raw is its JSON payload.
func (n *Namespace) rawPacket(typ int, ackID int64, raw []byte, bins [][]byte, volatile bool, key string) *clients.Packet {
	frames := make([]clients.Frame, 0, 1+len(bins))
	frames = append(frames, clients.NewFrame(false, encodePacket(typ, n.name, ackID, raw, len(bins))))
	for _, b := range bins {
		frames = append(frames, clients.NewFrame(true, b))
	}
	return n.framesPacket(typ, frames, volatile, key)
}

func (n *Namespace) framesPacket(typ int, frames []clients.Frame, volatile bool, key string) *clients.Packet {
	kind := clients.Droppable
	switch {
	case typ != typeEvent:
		kind = clients.Control
	case volatile:
		kind = clients.Volatile
	}
	p := clients.NewPacket(kind, frames...)
	p.Key = key
	n.mu.RLock()
	p.Policy = n.policy
	n.mu.RUnlock()
	return p
}
