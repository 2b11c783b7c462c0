package namespaces

import (
	"sync"
	"sync/atomic"

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

	mu        sync.RWMutex
	sockets   map[string]*Socket
	connectMW []ConnectMiddleware
	eventMW   []EventMiddleware
	onConnect []func(*Socket)

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

// Use adds connect middleware.
func (n *Namespace) Use(mw ConnectMiddleware) {
	n.mu.Lock()
	n.connectMW = append(n.connectMW, mw)
	n.mu.Unlock()
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
func (n *Namespace) To(rooms ...string) *Broadcast     { return n.all().To(rooms...) }
func (n *Namespace) Except(rooms ...string) *Broadcast { return n.all().Except(rooms...) }
func (n *Namespace) Volatile() *Broadcast              { return n.all().Volatile() }
func (n *Namespace) Local() *Broadcast                 { return n.all().Local() }
func (n *Namespace) all() *Broadcast                   { return &Broadcast{nsp: n} }

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

// receiver delivers adapter messages to local sockets.
type receiver struct{ n *Namespace }

func (r receiver) Deliver(id string, msg *adapter.Message) {
	n := r.n
	n.mu.RLock()
	s := n.sockets[id]
	n.mu.RUnlock()
	if s == nil {
		return
	}
	if col, ok := msg.Local.(*ackCollector); ok {
		if !col.expect(s) {
			return
		}
	}
	s.deliver(n.encode(msg), msg.Offset)
}

// encode renders msg once for every local recipient.
func (n *Namespace) encode(msg *adapter.Message) *clients.Packet {
	return msg.Encoded(func(m *adapter.Message) any {
		data := m.Data
		if m.Offset != "" {
			data = append(data[:len(data):len(data)], m.Offset)
		}
		p := n.packet(m.Type, m.AckID, data, m.Volatile, m.Key)
		if pol, ok := m.Local.(clients.Policy); ok && p != nil {
			p.Policy = pol
		}
		return p
	}).(*clients.Packet)
}

// packet encodes a socket.io packet of this namespace. Encoding errors
// (values encoding/json cannot marshal) yield a nil packet; callers check
// values first through encodeData.
func (n *Namespace) packet(typ int, ackID int64, data []any, volatile bool, key string) *clients.Packet {
	raw, bins, err := encodeData(data)
	if err != nil {
		n.log.Error("cannot encode packet", zap.Error(err))
		return nil
	}
	return n.rawPacket(typ, ackID, raw, bins, volatile, key)
}

func (n *Namespace) rawPacket(typ int, ackID int64, raw []byte, bins [][]byte, volatile bool, key string) *clients.Packet {
	frames := make([]clients.Frame, 0, 1+len(bins))
	frames = append(frames, clients.NewFrame(false, encodePacket(typ, n.name, ackID, raw, len(bins))))
	for _, b := range bins {
		frames = append(frames, clients.NewFrame(true, b))
	}
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
