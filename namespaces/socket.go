package namespaces

import (
	"context"
	"encoding/json"
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

// EventHandler handles one incoming event.
type EventHandler func(ev *Event)

// Event is an incoming event.
type Event struct {
	Socket *Socket
	Name   string
	// Args are the decoded arguments: nil, bool, float64, string, []any,
	// map[string]any, and []byte for binary attachments.
	Args  []any
	ackID int64
	acked bool
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

// Bind decodes argument i into v (through JSON).
func (e *Event) Bind(i int, v any) error {
	if i >= len(e.Args) {
		return &json.UnmarshalTypeError{Value: "missing argument", Type: nil}
	}
	b, err := json.Marshal(e.Args[i])
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Socket is one client's presence in one namespace.
type Socket struct {
	id        string
	pid       string
	nsp       *Namespace
	client    *Client
	handshake Handshake
	recovered bool
	acks      clients.Acks

	mu         sync.Mutex
	handlers   map[string]EventHandler
	anyHandler EventHandler
	middleware []EventMiddleware
	onDisc     []func(reason clients.Reason)
	data       map[string]any
	ready      bool
	early      []earlyPacket
	closed     bool
	timeout    time.Duration
	volatile   bool
	acksOf     *Socket // set on Timeout and Volatile views
	base       string  // recovery offset when the socket connected
	floor      string  // recovered sockets: see connected
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
func (s *Socket) OnDisconnect(fn func(reason clients.Reason)) {
	s.mu.Lock()
	s.onDisc = append(s.onDisc, fn)
	s.mu.Unlock()
}

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...string) { s.nsp.adapter.Join(s.id, rooms...) }

// Leave removes the socket from a room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Leave(s.id, room) }

// Rooms lists the socket's rooms (its own id among them).
func (s *Socket) Rooms() []string { return s.nsp.adapter.Rooms(s.id) }

// To starts a broadcast to rooms that skips this socket.
func (s *Socket) To(rooms ...string) *Broadcast {
	return s.nsp.all().Except(s.id).To(rooms...)
}

// Broadcast starts a broadcast to the whole namespace but this socket.
func (s *Socket) Broadcast() *Broadcast { return s.nsp.all().Except(s.id) }

// Timeout returns a view of the socket whose emits with ack time out after d.
func (s *Socket) Timeout(d time.Duration) *Socket {
	o := s.owner()
	return &Socket{id: o.id, nsp: o.nsp, client: o.client, timeout: d, volatile: s.volatile, acksOf: o}
}

// Volatile returns a view of the socket whose emits may be dropped when the
// connection is busy.
func (s *Socket) Volatile() *Socket {
	o := s.owner()
	return &Socket{id: o.id, nsp: o.nsp, client: o.client, timeout: s.timeout, volatile: true, acksOf: o}
}

// Emit sends event with args to this socket. If the last argument is an Ack
// (or a func([]any, error)) it is called with the client's answer or an
// error. Emit never blocks.
func (s *Socket) Emit(ctx context.Context, event string, args ...any) error {
	if n := len(args); n > 0 {
		var ack Ack
		switch a := args[n-1].(type) {
		case Ack:
			ack = a
		case func([]any, error):
			ack = a
		}
		if ack != nil {
			return s.emitAck(ctx, event, args[:n-1], ack)
		}
	}
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	// Through the adapter, as a broadcast to the socket's own room, so the
	// packet is kept for recovery like any other.
	s.nsp.adapter.Broadcast(&adapter.Message{Type: typeEvent, Data: data, AckID: -1, Volatile: s.volatile},
		adapter.Options{Rooms: []string{s.id}, Local: true, Volatile: s.volatile})
	return nil
}

// EmitWithAck sends event and waits for the client's ack, the timeout
// (Timeout, or the namespace default) or the end of ctx.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	type answer struct {
		args []any
		err  error
	}
	ch := make(chan answer, 1)
	if err := s.emitAck(ctx, event, args, func(a []any, err error) { ch <- answer{a, err} }); err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		return a.args, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Socket) emitAck(ctx context.Context, event string, args []any, ack Ack) error {
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	owner := s.owner()
	timeout := s.timeout
	if timeout <= 0 {
		timeout = s.nsp.srv.cfg.AckTimeout
	}
	id := s.nsp.ackIDs.Add(1) - 1
	pkt := s.nsp.packet(typeEvent, id, data, false, "")
	if pkt == nil {
		return errEncode
	}
	var once sync.Once
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			owner.acks.Cancel(id)
			once.Do(func() { ack(nil, ctx.Err()) })
		})
	}
	if !owner.acks.Add(id, func(a []any, err error) {
		stop()
		once.Do(func() { ack(a, err) })
	}, timeout) {
		return nil
	}
	owner.deliver(pkt, "")
	return nil
}

// owner is the real socket behind a Timeout view.
func (s *Socket) owner() *Socket {
	if s.acksOf != nil {
		return s.acksOf
	}
	return s
}

// Disconnect sends the client a DISCONNECT for this namespace; with
// closeConn the whole connection closes.
func (s *Socket) Disconnect(closeConn bool) {
	o := s.owner()
	if !closeConn {
		o.leave()
		return
	}
	// As the reference server: every socket of the connection is told,
	// then the connection closes.
	for _, other := range o.client.Sockets() {
		other.leave()
	}
	o.client.conn.Close(clients.ReasonForcedServerClose)
}

// leave sends the client a DISCONNECT for this namespace and ends the
// socket.
func (s *Socket) leave() {
	s.send(s.nsp.rawPacket(typeDisconnect, -1, nil, nil, false, ""))
	s.client.detach(s)
	s.closeWith(clients.ReasonServerNamespaceDisconnect)
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
	raw, bins, err := encodeData(args)
	if err != nil {
		return err
	}
	s.send(s.nsp.rawPacket(typeAck, id, raw, bins, false, ""))
	return nil
}

// connected sends CONNECT, then the missed packets, then what arrived
// meanwhile, and opens the socket to direct delivery. A recovered socket
// keeps a floor: the newest offset the client had or was replayed; a later
// delivery at or below it (a backplane reader that lags behind the replay)
// is a duplicate and is dropped.
func (s *Socket) connected(missed []*adapter.Message, clientOffset string) {
	payload, _ := json.Marshal(map[string]string{"sid": s.id, "pid": s.pid})
	if s.pid == "" {
		payload, _ = json.Marshal(map[string]string{"sid": s.id})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client.conn.Send(s.nsp.rawPacket(typeConnect, -1, payload, nil, false, ""))
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
	ev := &Event{Socket: s, Name: name, Args: args[1:], ackID: p.id}
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
func (s *Socket) closeWith(reason clients.Reason) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	wasReady := s.ready
	s.early = nil
	handlers := s.onDisc
	data := s.data
	s.mu.Unlock()
	n := s.nsp
	if wasReady && reason.Recoverable() && n.srv.cfg.RecoveryWindow > 0 {
		rooms := n.adapter.Rooms(s.id)
		n.adapter.SaveSession(&adapter.Session{ID: s.id, PID: s.pid, Rooms: rooms, Data: data, Base: s.base})
	}
	n.remove(s)
	n.adapter.LeaveAll(s.id)
	s.acks.Close()
	if wasReady {
		if h := n.srv.cfg.Hooks.Disconnect; h != nil {
			h(n.name, reason)
		}
		for _, fn := range handlers {
			fn(reason)
		}
		n.log.Debug("socket disconnected", zap.String("sid", s.id), zap.Stringer("reason", reason))
	}
	n.srv.collect(n)
}
