package namespaces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// Broadcast selects sockets of a namespace and emits to them. Each operator
// returns a new Broadcast; a Broadcast may be reused.
type Broadcast struct {
	nsp      *Namespace
	rooms    []string
	except   []string
	volatile bool
	local    bool
	timeout  time.Duration
	key      string
	policy   clients.Policy
}

func (b *Broadcast) clone() *Broadcast {
	c := *b
	c.rooms = slices.Clone(b.rooms)
	c.except = slices.Clone(b.except)
	return &c
}

// To adds rooms: a socket in any of them receives the emit.
func (b *Broadcast) To(rooms ...string) *Broadcast {
	c := b.clone()
	c.rooms = append(c.rooms, rooms...)
	return c
}

// Except skips the sockets in any of these rooms (a socket id is a room).
func (b *Broadcast) Except(rooms ...string) *Broadcast {
	c := b.clone()
	c.except = append(c.except, rooms...)
	return c
}

// Volatile lets busy sockets drop the emit.
func (b *Broadcast) Volatile() *Broadcast { c := b.clone(); c.volatile = true; return c }

// Local keeps the emit on this node.
func (b *Broadcast) Local() *Broadcast { c := b.clone(); c.local = true; return c }

// Timeout bounds the wait for acks.
func (b *Broadcast) Timeout(d time.Duration) *Broadcast { c := b.clone(); c.timeout = d; return c }

// Coalesce gives the emit a key: a full send queue under the coalesce
// policy replaces the queued emit with the same key by this one.
func (b *Broadcast) Coalesce(key string) *Broadcast { c := b.clone(); c.key = key; return c }

// Policy overrides the send queue policy for this emit.
func (b *Broadcast) Policy(p clients.Policy) *Broadcast { c := b.clone(); c.policy = p; return c }

func (b *Broadcast) opts() adapter.Options {
	return adapter.Options{Rooms: b.rooms, Except: b.except, Local: b.local, Volatile: b.volatile}
}

// Emit sends event with args to every selected socket. It never blocks.
// Errors: ErrEventName, ErrEncode (nothing was sent), and the backplane's
// adapter.ErrPublishQueueFull, adapter.ErrBackplaneDown or
// adapter.ErrClosed: the local sockets received it, the other nodes did
// not. A nil error means the publish was queued; a failure after that
// (the backplane going away mid-publish) is logged and counted by the
// adapter.
func (b *Broadcast) Emit(ctx context.Context, event string, args ...any) error {
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	if err := checkEncodable(data); err != nil {
		return err
	}
	msg := &adapter.Message{Type: typeEvent, Data: data, Volatile: b.volatile, Key: b.key, AckID: -1}
	if b.policy != 0 {
		msg.Local = &localState{policy: b.policy}
	}
	return b.nsp.adapter.Broadcast(msg, b.opts())
}

// EmitWithAck sends event to every selected socket and waits until each
// has answered or disconnected, the timeout (Timeout, else
// Config.AckTimeout) passes, or ctx ends. It returns one value per answer:
// the ack's argument, or the list of them when the client passed several
// or none. On timeout it returns what arrived with ErrAckTimeout; on the
// end of ctx, with ctx.Err().
func (b *Broadcast) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	return b.emitWithAck(ctx, event, args)
}

// EmitWithAckFunc is EmitWithAck without waiting: ack is called once, on
// another goroutine, with what EmitWithAck would return. The returned
// error (ErrEventName, ErrEncode) means nothing was sent and ack is not
// called.
func (b *Broadcast) EmitWithAckFunc(ctx context.Context, ack Ack, event string, args ...any) error {
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	if err := checkEncodable(data); err != nil {
		return err
	}
	go func() { ack(b.emitWithAck(ctx, event, args)) }()
	return nil
}

// localState travels with a broadcast to the local recipients
// (adapter.Message.Local): the policy of the emit and, with ack, its
// collector.
type localState struct {
	policy clients.Policy
	col    *ackCollector
}

func (b *Broadcast) emitWithAck(ctx context.Context, event string, args []any) ([]any, error) {
	data, err := eventData(event, args)
	if err != nil {
		return nil, err
	}
	if err := checkEncodable(data); err != nil {
		return nil, err
	}
	timeout := b.timeout
	if timeout <= 0 {
		timeout = b.nsp.srv.cfg.AckTimeout
	}
	servers := b.nsp.adapter.ServerCount(ctx)
	col := &ackCollector{done: make(chan struct{}), servers: servers}
	msg := &adapter.Message{Type: typeEvent, Data: data, Volatile: b.volatile, Key: b.key, AckID: -1, OnAck: col.answer, AckTimeout: timeout,
		Local: &localState{policy: b.policy, col: col}}
	opts := b.opts()
	opts.WithAck = true
	opts.Timeout = timeout
	b.nsp.adapter.BroadcastWithAck(msg, opts, col.count)
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-col.done:
		return col.result(), nil
	case <-timer:
		col.finish()
		return col.result(), ErrAckTimeout
	case <-ctx.Done():
		col.finish()
		return col.result(), ctx.Err()
	}
}

// ackCollector gathers the acks of one broadcast, from every node: it is
// done once each node has said how many recipients it had and that many
// answers have arrived.
type ackCollector struct {
	mu       sync.Mutex
	servers  int // nodes still to report their count
	expected int
	answers  []any
	done     chan struct{}
	finished bool
}

func (c *ackCollector) count(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers--
	c.expected += n
	c.check()
}

// gone takes back the answer a local recipient that disconnected will
// never give.
func (c *ackCollector) gone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expected--
	c.check()
}

func (c *ackCollector) answer(args []any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.answers = append(c.answers, ackValue(args))
	c.check()
}

func ackValue(args []any) any {
	if len(args) == 1 {
		return args[0]
	}
	return args
}

func (c *ackCollector) check() {
	if !c.finished && c.servers <= 0 && len(c.answers) >= c.expected {
		c.finish0()
	}
}

func (c *ackCollector) finish() {
	c.mu.Lock()
	c.finish0()
	c.mu.Unlock()
}

func (c *ackCollector) finish0() {
	if !c.finished {
		c.finished = true
		close(c.done)
	}
}

func (c *ackCollector) result() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.answers)
}

// reservedEvents are names a socket.io client gives its own meaning; the
// reference server refuses to emit them, and so do we.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// eventData builds [event, args...].
func eventData(event string, args []any) ([]any, error) {
	if event == "" {
		return nil, ErrEventName
	}
	if reservedEvents[event] {

		return nil, fmt.Errorf("%w: %q is a reserved event name", ErrEventName, event)
	}
	data := make([]any, 0, 1+len(args))
	data = append(data, event)
	data = append(data, args...)
	return data, nil
}

// Sockets lists the selected local sockets.
func (b *Broadcast) Sockets() []*Socket {
	ids := b.nsp.adapter.Sockets(b.opts())
	out := make([]*Socket, 0, len(ids))
	for _, id := range ids {
		if s := b.nsp.Socket(id); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// FetchSockets describes the selected sockets on every node (this node
// only with Local).
func (b *Broadcast) FetchSockets(ctx context.Context) ([]adapter.SocketInfo, error) {
	return b.nsp.adapter.FetchSockets(ctx, b.opts())
}

// Join makes the selected sockets, on every node, join rooms. Other nodes
// are asked through the backplane; the redis adapter waits (up to 2 s) until
// the other roomcast nodes have applied it, so a broadcast sent right after
// reaches the sockets joined there, the other adapters do not wait. The
// local sockets join
// whatever happens; an error (adapter.ErrPublishQueueFull,
// adapter.ErrBackplaneDown, adapter.ErrClosed) means the other nodes were
// not asked. A failure after the request was queued is logged and counted
// by the adapter.
func (b *Broadcast) Join(rooms ...string) error {
	local := b.observed(b.nsp.srv.cfg.Hooks.RoomJoined)
	err := b.nsp.adapter.AddSockets(b.opts(), rooms)
	b.report(b.nsp.srv.cfg.Hooks.RoomJoined, local, rooms)
	return err
}

// Leave makes the selected sockets, on every node, leave rooms. Errors:
// see Join.
func (b *Broadcast) Leave(rooms ...string) error {
	local := b.observed(b.nsp.srv.cfg.Hooks.RoomLeft)
	err := b.nsp.adapter.DelSockets(b.opts(), rooms)
	b.report(b.nsp.srv.cfg.Hooks.RoomLeft, local, rooms)
	return err
}

// observed lists the local sockets a Join or Leave selects, when a room
// hook wants them (before the change: a Leave may empty the selection).
func (b *Broadcast) observed(hook func(nsp, room, sid string)) []string {
	if hook == nil || b.nsp.adapter == nil {
		return nil
	}
	return b.nsp.adapter.Sockets(b.opts())
}

func (b *Broadcast) report(hook func(nsp, room, sid string), ids, rooms []string) {
	if hook == nil {
		return
	}
	for _, id := range ids {
		for _, room := range rooms {
			hook(b.nsp.name, room, id)
		}
	}
}

// Disconnect disconnects the selected sockets on every node; with
// closeConn their whole connections close. Errors: see Join.
func (b *Broadcast) Disconnect(closeConn bool) error {
	return b.nsp.adapter.DisconnectSockets(b.opts(), closeConn)
}

// Deliver hands a broadcast to one local recipient (the adapter calls it
// for each, from the broadcasting goroutine or the backplane's receive
// loop): the packet is encoded once for all of them.
func (r receiver) Deliver(id string, msg *adapter.Message) {
	n := r.n
	var col *ackCollector // set on a broadcast with ack this node sent
	if l, ok := msg.Local.(*localState); ok {
		col = l.col
	}
	s := n.Socket(id)
	if s == nil {
		if col != nil && msg.OnAck != nil {
			col.gone() // left between the adapter's lookup and now
		}
		return
	}
	if msg.OnAck != nil {
		onAck := msg.OnAck
		if !s.acks.Add(msg.AckID, func(args []any, err error) {
			switch {
			case err == nil:
				onAck(args)
			case col != nil && errors.Is(err, ErrSocketDisconnected):
				// This answer will never come: the sender stops waiting
				// for it rather than until its timeout.
				col.gone()
			}
		}, msg.AckTimeout) {
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
		if l, ok := m.Local.(*localState); ok && p != nil && l.policy != 0 {
			p.Policy = l.policy
		}
		return p
	}).(*clients.Packet)
}
