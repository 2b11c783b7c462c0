package adapter

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Message types of the cluster protocol (socket.io-adapter's
// ClusterAdapter), spoken by Node's sharded Redis adapter and Redis streams
// adapter.
const (
	cmInitialHeartbeat       = 1
	cmHeartbeat              = 2
	cmBroadcast              = 3
	cmSocketsJoin            = 4
	cmSocketsLeave           = 5
	cmDisconnectSockets      = 6
	cmFetchSockets           = 7
	cmFetchSocketsResponse   = 8
	cmServerSideEmit         = 9
	cmServerSideEmitResponse = 10
	cmBroadcastClientCount   = 11
	cmBroadcastAck           = 12
	cmAdapterClose           = 13
)

// clusterMsg is a message of the cluster protocol.
type clusterMsg struct {
	UID  string
	Nsp  string
	Type int
	Data map[string]any
}

// clusterLink carries cluster messages between nodes.
type clusterLink interface {
	// publish sends m to every node; offset is m's position in a durable
	// log ("" when the link keeps none).
	publish(ctx context.Context, m clusterMsg) (offset string, err error)
	// respond sends m to the node uid only.
	respond(ctx context.Context, uid string, m clusterMsg) error
	// serverCount is the number of live nodes, this one included.
	serverCount(ctx context.Context) int
}

// cluster is a namespace's adapter on the cluster protocol: local state
// and delivery are the embedded Memory's; link moves the messages.
type cluster struct {
	*Memory
	link    clusterLink
	uid     string
	nsp     string
	timeout time.Duration
	log     *zap.Logger
	fail    func(op string, err error)
	stats   *Stats
	// logOffsets: the link's log gives broadcasts their recovery offsets
	// (streams), instead of the local history.
	logOffsets bool
	// async runs publishes in order off the caller's goroutine; an error
	// means the publish was not queued.
	async func(func()) error

	reqs tracker
}

func newCluster(recv Receiver, window time.Duration, nsp, uid string, timeout time.Duration, log *zap.Logger, fail func(string, error), async func(func()) error) *cluster {
	return &cluster{
		async:   async,
		Memory:  NewMemory(recv, window),
		uid:     uid,
		nsp:     nsp,
		timeout: timeout,
		log:     log,
		fail:    fail,
		reqs:    newTracker(),
	}
}

// post publishes a message without waiting for it.
func (c *cluster) post(typ int, data map[string]any) error {
	return c.async(func() { c.send(typ, data) })
}

// Flush waits until the publishes queued before it have been sent (see
// Flusher): they run in order, so a marker behind them is reached after.
func (c *cluster) Flush(ctx context.Context) error {
	return flushThrough(ctx, func(done chan struct{}) error {
		return c.async(func() { close(done) })
	})
}

// flushThrough queues a marker with queue and waits until the publisher
// reaches it (closes done) or ctx ends.
func flushThrough(ctx context.Context, queue func(done chan struct{}) error) error {
	done := make(chan struct{})
	if err := queue(done); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cluster) send(typ int, data map[string]any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	off, err := c.link.publish(ctx, clusterMsg{UID: c.uid, Nsp: c.nsp, Type: typ, Data: data})
	c.stats.published(1, start, err)
	if err != nil {
		c.fail("publish", err)
	}
	return off, err
}

func (c *cluster) reply(uid string, typ int, data map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	err := c.link.respond(ctx, uid, clusterMsg{UID: c.uid, Nsp: c.nsp, Type: typ, Data: data})
	c.stats.published(1, start, err)
	if err != nil {
		c.fail("publish", err)
	}
}

// recoverable tells whether a broadcast is kept for recovery.
func recoverable(msg *Message, opts Options) bool {
	return msg.Type == PacketEvent && !opts.Volatile && !opts.WithAck && msg.AckID < 0
}

// Broadcast publishes msg to the other nodes (unless Local) and delivers it
// here; an error means it was delivered here only.
func (c *cluster) Broadcast(msg *Message, opts Options) error {
	if opts.Local {
		c.deliverLocal(msg, opts, "")
		return nil
	}
	data := map[string]any{"packet": packetOf(c.nsp, msg), "opts": wireFor(msg, opts)}
	if !c.logOffsets {
		err := c.post(cmBroadcast, data)
		c.deliverLocal(msg, opts, "")
		return err
	}
	// With a log, every node, this one included, delivers in log order when
	// it reads the entry back: a client's offsets then only grow, so what it
	// missed is exactly what follows its last offset. Only when the log
	// cannot be written does this node deliver at once (without an offset).
	err := c.async(func() {
		if _, err := c.send(cmBroadcast, data); err != nil {
			c.deliverLocal(msg, opts, "")
		}
	})
	if err != nil {
		c.deliverLocal(msg, opts, "")
	}
	return err
}

func (c *cluster) deliverLocal(msg *Message, opts Options, offset string) {
	if !c.logOffsets {
		c.Memory.Broadcast(msg, opts)
		return
	}
	if offset != "" && c.window > 0 && recoverable(msg, opts) {
		msg.Offset = offset
	}
	c.ForEach(opts, func(id string) { c.recv.Deliver(id, msg) })
}

func (c *cluster) BroadcastWithAck(msg *Message, opts Options, onCount func(int)) error {
	var err error
	if !opts.Local {
		id := randomID(8)
		timeout := opts.Timeout
		if timeout <= 0 {
			timeout = c.timeout
		}
		c.reqs.expectAcks(id, onCount, msg.OnAck, timeout)
		err = c.post(cmBroadcast, map[string]any{"packet": packetOf(c.nsp, msg), "requestId": id, "opts": toWire(opts)})
	}
	c.Memory.BroadcastWithAck(msg, opts, onCount)
	return err
}

func (c *cluster) AddSockets(opts Options, rooms []string) error {
	var err error
	if !opts.Local {
		err = c.post(cmSocketsJoin, map[string]any{"opts": toWire(opts), "rooms": rooms})
	}
	c.Memory.AddSockets(opts, rooms)
	return err
}

func (c *cluster) DelSockets(opts Options, rooms []string) error {
	var err error
	if !opts.Local {
		err = c.post(cmSocketsLeave, map[string]any{"opts": toWire(opts), "rooms": rooms})
	}
	c.Memory.DelSockets(opts, rooms)
	return err
}

func (c *cluster) DisconnectSockets(opts Options, close bool) error {
	var err error
	if !opts.Local {
		err = c.post(cmDisconnectSockets, map[string]any{"opts": toWire(opts), "close": close})
	}
	c.Memory.DisconnectSockets(opts, close)
	return err
}

func (c *cluster) ServerCount(ctx context.Context) int { return c.link.serverCount(ctx) }

func (c *cluster) FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error) {
	local, _ := c.Memory.FetchSockets(ctx, opts)
	if opts.Local {
		return local, nil
	}
	remote, _, err := c.ask(ctx, askFetch, cmFetchSockets, map[string]any{"opts": toWire(opts)})
	return append(local, remote...), err
}

func (c *cluster) ServerSideEmit(ctx context.Context, data []any, withAck bool) ([]any, error) {
	if !withAck {
		return nil, c.post(cmServerSideEmit, map[string]any{"packet": plain(data)})
	}
	_, responses, err := c.ask(ctx, askEmit, cmServerSideEmit, map[string]any{"packet": plain(data)})
	return append([]any{}, responses...), err
}

// ask publishes a request and waits for one answer per other live node.
func (c *cluster) ask(ctx context.Context, kind askKind, typ int, data map[string]any) ([]SocketInfo, []any, error) {
	others := c.link.serverCount(ctx) - 1
	if others <= 0 {
		return nil, nil, nil
	}
	id := randomID(8)
	data["requestId"] = id
	return c.reqs.ask(ctx, id, kind, others, c.timeout, func() error {
		_, err := c.send(typ, data)
		return err
	})
}

// onMessage handles a message from another node; offset is its position in
// the link's log, if any. It runs on the link's receive loop: nothing here
// blocks (replies and user handlers go to goroutines).
func (c *cluster) onMessage(m clusterMsg, offset string) {
	if m.Nsp != c.nsp {
		return
	}
	d := m.Data
	if m.UID == c.uid {
		// Our own messages come back only through a log; of those, the
		// broadcasts are delivered here, in log order (see Broadcast).
		if _, withAck := d["requestId"]; offset == "" || m.Type != cmBroadcast || withAck {
			return
		}
	}
	switch m.Type {
	case cmBroadcast:
		msg, ok := messageOf(d["packet"], c.nsp)
		if !ok {
			return
		}
		opts, key := fromWireKey(d["opts"])
		opts.Local = true
		msg.Volatile, msg.Key = opts.Volatile, key
		id, _ := d["requestId"].(string)
		if id == "" {
			c.deliverLocal(msg, opts, offset)
			return
		}
		opts.WithAck = true
		msg.AckTimeout = opts.Timeout
		uid := m.UID
		msg.OnAck = func(args []any) {
			go c.reply(uid, cmBroadcastAck, map[string]any{"requestId": id, "packet": plain1(ackArg(args))})
		}
		c.Memory.BroadcastWithAck(msg, opts, func(n int) {
			go c.reply(uid, cmBroadcastClientCount, map[string]any{"requestId": id, "clientCount": n})
		})
	case cmSocketsJoin:
		c.Memory.AddSockets(fromWire(d["opts"]), strings_(d["rooms"]))
	case cmSocketsLeave:
		c.Memory.DelSockets(fromWire(d["opts"]), strings_(d["rooms"]))
	case cmDisconnectSockets:
		closeConn, _ := d["close"].(bool)
		c.Memory.DisconnectSockets(fromWire(d["opts"]), closeConn)
	case cmFetchSockets:
		id, _ := d["requestId"].(string)
		socks, _ := c.Memory.FetchSockets(context.Background(), fromWire(d["opts"]))
		if socks == nil {
			socks = []SocketInfo{}
		}
		go c.reply(m.UID, cmFetchSocketsResponse, map[string]any{"requestId": id, "sockets": socks})
	case cmServerSideEmit:
		data, _ := d["packet"].([]any)
		id, _ := d["requestId"].(string)
		var ack func(any)
		if id != "" {
			uid := m.UID
			var once sync.Once
			ack = func(v any) {
				once.Do(func() {
					go c.reply(uid, cmServerSideEmitResponse, map[string]any{"requestId": id, "packet": plain1(v)})
				})
			}
		}
		go c.recv.ServerSideEmit(data, ack)
	case cmBroadcastClientCount, cmBroadcastAck, cmFetchSocketsResponse, cmServerSideEmitResponse:
		c.onResponse(m)
	}
}

func (c *cluster) onResponse(m clusterMsg) {
	id, _ := m.Data["requestId"].(string)
	switch m.Type {
	case cmBroadcastClientCount:
		n, _ := toInt(m.Data["clientCount"])
		c.reqs.onCount(id, int(n))
	case cmBroadcastAck:
		c.reqs.onAck(id, m.Data["packet"])
	case cmFetchSocketsResponse:
		c.reqs.answer(id, askFetch, m.Data["sockets"], nil)
	case cmServerSideEmitResponse:
		c.reqs.answer(id, askEmit, nil, m.Data["packet"])
	}
}

// packetOf renders msg as the protocol's packet object.
func packetOf(nsp string, msg *Message) map[string]any {
	p := map[string]any{"type": msg.Type, "data": plain(msg.Data), "nsp": nsp}
	if msg.AckID >= 0 && msg.OnAck == nil {
		p["id"] = msg.AckID
	}
	return p
}

// messageOf reads a protocol packet object of namespace nsp.
func messageOf(v any, nsp string) (*Message, bool) {
	p, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	if n, ok := p["nsp"].(string); ok && n != nsp {
		return nil, false
	}
	typ, _ := toInt(p["type"])
	data, _ := p["data"].([]any)
	return &Message{Type: int(typ), Data: data, AckID: -1}, true
}

// routes hands the messages a node receives to its namespaces' adapters:
// the receive dispatcher of the cluster-protocol backplanes.
type routes struct {
	prefix string // a namespace's channels start with prefix + nsp + "#"
	fail   func(op string, err error)

	mu   sync.RWMutex
	nsps map[string]*cluster
}

func newRoutes(prefix string, fail func(string, error)) *routes {
	return &routes{prefix: prefix, fail: fail, nsps: make(map[string]*cluster)}
}

func (r *routes) add(nsp string, c *cluster) {
	r.mu.Lock()
	r.nsps[nsp] = c
	r.mu.Unlock()
}

func (r *routes) remove(nsp string) {
	r.mu.Lock()
	delete(r.nsps, nsp)
	r.mu.Unlock()
}

func (r *routes) get(nsp string) *cluster {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.nsps[nsp]
}

// dispatch decodes a message of the cluster protocol received on channel
// and hands it to its namespace's adapter (offset: its position in a log,
// "" for pub/sub). It never blocks.
func (r *routes) dispatch(channel string, payload []byte, offset string) {
	if !strings.HasPrefix(channel, r.prefix) {
		return
	}
	r.deliver(cut(channel[len(r.prefix):]), payload, offset)
}

// deliver decodes a message of the cluster protocol for namespace nsp and
// hands it to the namespace's adapter.
func (r *routes) deliver(nsp string, payload []byte, offset string) {
	c := r.get(nsp)
	if c == nil {
		return
	}
	m, err := decodeClusterMsg(payload)
	if err != nil {
		r.fail("decode", err)
		return
	}
	c.onMessage(m, offset)
}
