package namespaces

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// Handshake is what a socket knows of its connection's first request.
type Handshake struct {
	Headers http.Header
	Query   url.Values
	Address string // the peer's IP address
	Time    time.Time
	URL     string
	Host    string
	Secure  bool
	// Auth is the CONNECT payload (an empty map when the client sent none).
	Auth map[string]any
}

// info is the handshake as fetchSockets reports it (the shape of the
// reference server's socket.handshake).
func (h Handshake) info() map[string]any {
	headers := map[string]any{}
	for k, v := range h.Headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	query := map[string]any{}
	for k, v := range h.Query {
		query[k] = v[0]
	}
	auth := h.Auth
	if auth == nil {
		auth = map[string]any{}
	}
	if h.Host != "" {
		headers["host"] = h.Host
	}
	return map[string]any{
		// time as JavaScript's Date.toString() renders it, like the reference.
		"headers": headers, "time": h.Time.UTC().Format("Mon Jan 02 2006 15:04:05 GMT+0000 (Coordinated Universal Time)"), "address": h.Address,
		"xdomain": headers["origin"] != nil, "secure": h.Secure, "issued": h.Time.UnixMilli(),
		"url": h.URL, "query": query, "auth": auth,
	}
}

func newHandshake(r *http.Request) Handshake {
	h := Handshake{Time: time.Now()}
	if r == nil {
		return h
	}
	h.Headers = r.Header.Clone()
	h.Query = r.URL.Query()
	h.URL = r.URL.String()
	h.Host = r.Host
	h.Secure = r.TLS != nil
	h.Address = r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.Address = host
	}
	return h
}

// Socket is one client's presence in one namespace.
type Socket struct {
	id        string
	pid       string
	nsp       *Namespace
	client    *Client
	handshake Handshake
	recovered bool
	acks      ackRegistry

	// life orders room changes against the end of the socket: Join and
	// Leave hold it shared, closeWith exclusively to set closed, so no
	// room is joined after the socket left them all.
	life sync.RWMutex

	mu         sync.Mutex
	handlers   map[string]EventHandler
	anyHandler EventHandler
	middleware []EventMiddleware
	onDisc     []func(reason Reason)
	data       map[string]any
	ready      bool
	early      []earlyPacket
	closed     bool
	ctx        context.Context // made on the first Context call
	cancel     context.CancelFunc
	base       string // recovery offset when the socket connected
	floor      string // recovered sockets: see connected
	// restored is the session a recovered socket came from, until it is
	// ready: closed before that, the socket puts it back.
	restored *adapter.Session
}

type earlyPacket struct {
	pkt    *clients.Packet
	offset string
}

// ID is the socket's id (stable across a recovered reconnection).
func (s *Socket) ID() string { return s.id }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake describes the connection's first request and CONNECT auth.
func (s *Socket) Handshake() Handshake { return s.handshake }

// Recovered tells whether the socket resumed a previous session.
func (s *Socket) Recovered() bool { return s.recovered }

// Transport names the connection's current transport.
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// ConnID is the Engine.IO session id of the socket's connection.
func (s *Socket) ConnID() string { return s.client.conn.ID() }

// Set stores a value on the socket (kept across recovery).
func (s *Socket) Set(key string, v any) {
	s.mu.Lock()
	if s.data == nil {
		s.data = make(map[string]any)
	}
	s.data[key] = v
	s.mu.Unlock()
}

// Get reads a value stored with Set.
func (s *Socket) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v, ok
}

// On registers the handler of an event, replacing any previous one.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler)
	}
	s.handlers[event] = h
	s.mu.Unlock()
}

// OnAny registers a handler for events that have no handler of their own.
func (s *Socket) OnAny(h EventHandler) {
	s.mu.Lock()
	s.anyHandler = h
	s.mu.Unlock()
}

// Use adds event middleware for this socket (after the namespace's).
func (s *Socket) Use(mw EventMiddleware) {
	s.mu.Lock()
	s.middleware = append(s.middleware, mw)
	s.mu.Unlock()
}

// OnDisconnect registers fn, called once with the reason when the socket
// goes away.
func (s *Socket) OnDisconnect(fn func(reason Reason)) {
	s.mu.Lock()
	s.onDisc = append(s.onDisc, fn)
	s.mu.Unlock()
}

// Context is a context that ends when the socket disconnects, for work
// started on the socket's behalf.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.closed {
			s.cancel()
		}
	}
	return s.ctx
}

// Connected tells whether the socket is still connected (or connecting).
func (s *Socket) Connected() bool { return !s.isClosed() }

func (s *Socket) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Join adds the socket to rooms. Errors: ErrSocketDisconnected (nothing is
// joined).
func (s *Socket) Join(rooms ...string) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.isClosed() {
		return ErrSocketDisconnected
	}
	s.nsp.adapter.Join(s.id, rooms...)
	if h := s.nsp.srv.cfg.Hooks.RoomJoined; h != nil {
		for _, room := range rooms {
			h(s.nsp.name, room, s.id)
		}
	}
	return nil
}

// Leave removes the socket from a room. Errors: ErrSocketDisconnected (it
// has left every room already).
func (s *Socket) Leave(room string) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.isClosed() {
		return ErrSocketDisconnected
	}
	s.nsp.adapter.Leave(s.id, room)
	if h := s.nsp.srv.cfg.Hooks.RoomLeft; h != nil {
		h(s.nsp.name, room, s.id)
	}
	return nil
}

// Rooms lists the socket's rooms (its own id among them).
func (s *Socket) Rooms() []string { return s.nsp.adapter.Rooms(s.id) }

// To starts a broadcast to rooms that skips this socket.
func (s *Socket) To(rooms ...string) *Broadcast {
	return s.nsp.all().Except(s.id).To(rooms...)
}

// Broadcast starts a broadcast to the whole namespace but this socket.
func (s *Socket) Broadcast() *Broadcast { return s.nsp.all().Except(s.id) }

// Timeout returns an Emitter to this socket whose emits with ack time out
// after d.
func (s *Socket) Timeout(d time.Duration) *Emitter { return &Emitter{s: s, timeout: d} }

// Volatile returns an Emitter to this socket whose emits may be dropped
// when the connection is busy.
func (s *Socket) Volatile() *Emitter { return &Emitter{s: s, volatile: true} }

// Emit sends event with args to this socket. It never blocks. Errors:
// ErrEventName, ErrEncode, ErrSocketDisconnected.
func (s *Socket) Emit(ctx context.Context, event string, args ...any) error {
	return (&Emitter{s: s}).Emit(ctx, event, args...)
}

// EmitWithAck sends event and waits for the client's ack, the timeout
// (Config.AckTimeout; see Timeout), the socket's disconnect or the end of
// ctx. See Emitter.EmitWithAck.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	return (&Emitter{s: s}).EmitWithAck(ctx, event, args...)
}

// EmitWithAckFunc sends event and calls ack once with the answer or an
// error, without waiting. See Emitter.EmitWithAckFunc.
func (s *Socket) EmitWithAckFunc(ctx context.Context, ack Ack, event string, args ...any) error {
	return (&Emitter{s: s}).EmitWithAckFunc(ctx, ack, event, args...)
}

// Disconnect sends the client a DISCONNECT for this namespace; with
// closeConn the whole connection closes. Errors: ErrSocketDisconnected.
func (s *Socket) Disconnect(closeConn bool) error {
	if s.isClosed() {
		return ErrSocketDisconnected
	}
	if !closeConn {
		s.leave()
		return nil
	}
	// As the reference server: every socket of the connection is told,
	// then the connection closes.
	for _, other := range s.client.Sockets() {
		other.leave()
	}
	s.client.conn.Close(clients.ReasonForcedServerClose)
	return nil
}

// leave sends the client a DISCONNECT for this namespace and ends the
// socket.
func (s *Socket) leave() {
	if pkt, err := s.nsp.valuePacket(typeDisconnect, -1, nil, false, ""); err == nil {
		s.send(pkt)
	}
	s.client.detach(s)
	s.closeWith(ReasonServerNamespaceDisconnect)
}

// deliver queues a packet, holding it while the socket is not yet
// connected (so nothing overtakes the CONNECT or the missed packets).
func (s *Socket) deliver(pkt *clients.Packet, offset string) {
	if pkt == nil {
		return
	}
	s.mu.Lock()
	if !s.ready {
		if !s.closed {
			s.early = append(s.early, earlyPacket{pkt, offset})
		}
		s.mu.Unlock()
		return
	}
	dup := s.duplicate(offset)
	s.mu.Unlock()
	if !dup {
		s.client.conn.Send(pkt)
	}
}

// duplicate tells whether a recovered socket already has the packet at
// offset. Called with s.mu held.
func (s *Socket) duplicate(offset string) bool {
	return s.floor != "" && offset != "" && !offsetAfter(offset, s.floor)
}

// offsetAfter compares recovery offsets (see adapter.OffsetAfter).
func offsetAfter(a, b string) bool { return adapter.OffsetAfter(a, b) }

// send queues a packet at once (CONNECT, acks, DISCONNECT).
func (s *Socket) send(pkt *clients.Packet) { s.client.conn.Send(pkt) }

func (s *Socket) sendAck(id int64, args []any) error {
	if args == nil {
		args = []any{}
	}
	pkt, err := s.nsp.valuePacket(typeAck, id, args, false, "")
	if err != nil {
		return err
	}
	s.send(pkt)
	return nil
}

// connected sends CONNECT, then the missed packets, then what arrived
// meanwhile, and opens the socket to direct delivery. A recovered socket
// keeps a floor: the newest offset the client had or was replayed; a later
// delivery at or below it (a backplane reader that lags behind the replay)
// is a duplicate and is dropped.
func (s *Socket) connected(missed []*adapter.Message, clientOffset string) {
	payload := map[string]any{"sid": s.id, "pid": s.pid}
	if s.pid == "" {
		payload = map[string]any{"sid": s.id}
	}
	pkt, _ := s.nsp.valuePacket(typeConnect, -1, payload, false, "") // strings: cannot fail
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client.conn.Send(pkt)
	if s.recovered {
		s.floor = clientOffset
		if s.floor == "" {
			s.floor = s.base
		}
	}
	for _, m := range missed {
		s.client.conn.Send(s.nsp.encode(m))
		if offsetAfter(m.Offset, s.floor) {
			s.floor = m.Offset
		}
	}
	for _, e := range s.early {
		if s.duplicate(e.offset) {
			continue
		}
		s.client.conn.Send(e.pkt)
	}
	s.early = nil
	s.ready = true
	s.restored = nil
}

// handleEvent runs middleware and the handler of an incoming event.
func (s *Socket) handleEvent(p *packet) error {
	args, err := p.args()
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return errPacket
	}
	name, ok := args[0].(string)
	if !ok {
		return errPacket
	}
	ev := &Event{Socket: s, Name: name, Args: args[1:], ackID: p.id, binary: len(p.bins) > 0}
	switch {
	case p.decoded:
		ev.binary = adapter.HasBinary(ev.Args)
	case ev.binary:
		ev.data = p.data // already a copy (Client.Text)
	default:
		ev.data = append([]byte(nil), p.data...) // the transport reuses its buffer
	}
	s.nsp.mu.RLock()
	nmw := s.nsp.eventMW
	nh := s.nsp.handlers[name]
	s.nsp.mu.RUnlock()
	s.mu.Lock()
	h := s.handlers[name]
	if h == nil {
		h = nh
	}
	if h == nil {
		h = s.anyHandler
	}
	smw := s.middleware
	s.mu.Unlock()
	for _, mws := range [2][]EventMiddleware{nmw, smw} {
		for _, mw := range mws {
			if err := mw(ev); err != nil {
				if ev.WantsAck() {
					_ = ev.Ack(map[string]any{"error": err.Error()})
				}
				return nil
			}
		}
	}
	if h == nil {
		s.nsp.log.Debug("no handler for event", zap.String("event", name), zap.String("sid", s.id))
		return nil
	}
	h(ev)
	return nil
}

// closeWith ends the socket: it leaves its rooms, fails its pending acks,
// keeps its session when the reason allows recovery, and tells the
// disconnect handlers.
func (s *Socket) closeWith(reason Reason) {
	s.life.Lock() // waits for a Join or Leave under way
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.life.Unlock()
		return
	}
	s.closed = true
	wasReady := s.ready
	restored := s.restored
	s.restored = nil
	s.early = nil
	handlers := s.onDisc
	data := s.data
	cancel := s.cancel
	s.mu.Unlock()
	s.life.Unlock()
	if cancel != nil {
		cancel()
	}
	n := s.nsp
	switch {
	case !reason.Recoverable() || n.srv.cfg.RecoveryWindow <= 0:
	case wasReady:
		rooms := n.adapter.Rooms(s.id)
		n.adapter.SaveSession(&adapter.Session{ID: s.id, PID: s.pid, Rooms: rooms, Data: data, Base: s.base})
	case restored != nil:
		// Closed while recovering, before the client heard of it: the
		// session goes back as it was, for the next attempt.
		n.adapter.SaveSession(restored)
	}
	n.remove(s)
	n.adapter.LeaveAll(s.id)
	s.acks.Close()
	if wasReady {
		if h := n.srv.cfg.Hooks.Disconnect; h != nil {
			h(n.name, reason)
		}
		if h := n.srv.cfg.Hooks.SocketDisconnected; h != nil {
			h(s, reason)
		}
		for _, fn := range handlers {
			fn(reason)
		}
		n.log.Debug("socket disconnected", zap.String("sid", s.id), zap.Stringer("reason", reason))
	}
	n.srv.collect(n)
}
