package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Request types of the Redis adapter protocol (those of Node's
// @socket.io/redis-adapter).
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// Defaults of RedisConfig.
const (
	DefaultRedisPrefix         = "socket.io"
	DefaultRedisRequestTimeout = 5 * time.Second
)

// ErrRequestTimeout is returned, with what arrived, by a cross-node request
// some live node did not answer in time.
var ErrRequestTimeout = errors.New("timeout reached while waiting for other nodes")

// RedisConfig configures the Redis pub/sub backplane of a node.
type RedisConfig struct {
	// Client publishes and subscribes. Required.
	Client redis.UniversalClient
	// Prefix of the channel names. "": DefaultRedisPrefix ("socket.io"), as
	// Node's adapter, so mixed clusters share channels.
	Prefix string
	// RequestTimeout bounds cross-node requests. 0: 5 s.
	RequestTimeout time.Duration
	// Logger: nil means none.
	Logger *zap.Logger
	// OnError observes Redis errors (for metrics); op is "publish",
	// "subscribe", "request" or "decode" (an undecodable message from the
	// backplane, skipped). Optional.
	OnError func(op string, err error)
	// Stats observes the messages published and received. Optional.
	Stats *Stats
}

// RedisNode is one process's connection to the Redis backplane. Its
// namespaces' adapters (RedisNode.Adapter) share one subscriber and one
// publisher; the subscriber's receive loop never blocks on a socket.
//
// A node subscribes to each namespace's channel (broadcasts to no room or
// to several) and to the channel of each room (a socket's own included)
// that has a member or a saved session here (broadcasts to that one room), as Node's adapter
// publishes them; it does not hear the other rooms' broadcasts.
type RedisNode struct {
	*node
	ps *redis.PubSub

	mu   sync.RWMutex
	nsps map[string]*Redis

	pub *publisher[publication]

	// Room subscriptions: the wanted state of each channel changed since
	// the subscriber last ran (compacted, so bounded by the rooms), and
	// sequence numbers: queued counts the changes, settled is the last
	// change Redis is known to have applied (a PING sent after them was
	// answered on the subscriber connection).
	smu     sync.Mutex
	changes map[string]bool
	queued  uint64
	settled uint64
	moved   chan struct{} // closed (and replaced) when settled moves
	wake    chan struct{}
	// settling bounds the answers waiting for subscriptions (see
	// Redis.respond).
	settling chan struct{}
}

// maxSettling is how many answers to other nodes may wait at once for this
// node's subscriptions; beyond it an answer goes out without waiting.
const maxSettling = 64

// joinWait bounds how long a join waits for Redis to confirm a room's
// subscription (Redis away: the join goes on, and go-redis subscribes
// again on reconnecting).
const joinWait = 2 * time.Second

// pingTag starts the payload of the PINGs that mark subscription changes
// as applied.
const pingTag = "roomcast-sub:"

type publication struct {
	channel string
	payload []byte
	// done, when set, makes this a flush marker: nothing is published and
	// done is closed once the publications before it have been.
	done chan struct{}
}

// NewRedisNode connects the backplane and starts its receive and publish
// loops. The client is not closed by Close.
func NewRedisNode(cfg RedisConfig) (*RedisNode, error) {
	base, err := newNode(cfg, "redis")
	if err != nil {
		return nil, err
	}
	n := &RedisNode{
		node:     base,
		nsps:     make(map[string]*Redis),
		changes:  make(map[string]bool),
		moved:    make(chan struct{}),
		wake:     make(chan struct{}, 1),
		settling: make(chan struct{}, maxSettling),
	}
	n.pub = newPublisher(publishQueue, n.publish, n.fail)
	n.ps = n.client.Subscribe(n.ctx)
	n.receive(n.ps, n.dispatch, n.pong)
	n.wg.Add(1)
	go n.subscriber()
	return n, nil
}

// change queues a room channel's subscription (sub) or unsubscription
// without blocking (it runs under the adapter's room lock).
func (n *RedisNode) change(channel string, sub bool) {
	n.smu.Lock()
	n.changes[channel] = sub
	n.queued++
	n.smu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// subscriber applies the queued changes, then PINGs on the subscriber
// connection: Redis answers after it has applied them.
func (n *RedisNode) subscriber() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.wake:
		}
		n.smu.Lock()
		changes, seq := n.changes, n.queued
		n.changes = make(map[string]bool)
		n.smu.Unlock()
		var sub, unsub []string
		for ch, on := range changes {
			if on {
				sub = append(sub, ch)
			} else {
				unsub = append(unsub, ch)
			}
		}
		// go-redis keeps the channels subscribed even when the command
		// fails, and subscribes them again when it reconnects.
		if len(unsub) > 0 {
			if err := n.ps.Unsubscribe(n.ctx, unsub...); err != nil && n.ctx.Err() == nil {
				n.fail("subscribe", err)
			}
		}
		if len(sub) > 0 {
			if err := n.ps.Subscribe(n.ctx, sub...); err != nil && n.ctx.Err() == nil {
				n.fail("subscribe", err)
			}
		}
		// The PING goes on the connection the subscriptions are on (a new
		// one, resubscribed, when Redis came back): retry until it does.
		for n.ctx.Err() == nil {
			err := n.ps.Ping(n.ctx, pingTag+strconv.FormatUint(seq, 10))
			if err == nil {
				break
			}
			n.fail("subscribe", err)
			if !sleepCtx(n.ctx, 200*time.Millisecond) {
				return
			}
		}
	}
}

// pong records that Redis has applied the changes up to the one a PING
// carried.
func (n *RedisNode) pong(payload string) {
	seq, err := strconv.ParseUint(strings.TrimPrefix(payload, pingTag), 10, 64)
	if err != nil || !strings.HasPrefix(payload, pingTag) {
		return
	}
	n.smu.Lock()
	defer n.smu.Unlock()
	if seq > n.settled {
		n.settled = seq
		close(n.moved)
		n.moved = make(chan struct{})
	}
}

// unsettled reports whether subscription changes are queued that Redis is
// not known to have applied.
func (n *RedisNode) unsettled() bool {
	n.smu.Lock()
	defer n.smu.Unlock()
	return n.settled < n.queued
}

// settle waits (up to joinWait) until Redis has applied every subscription
// change queued so far: a socket that has joined a room hears the room's
// broadcasts from other nodes from then on. It must not run on the
// receive loop (which reads the answers).
func (n *RedisNode) settle() {
	n.smu.Lock()
	want := n.queued
	n.smu.Unlock()
	deadline := time.NewTimer(joinWait)
	defer deadline.Stop()
	for {
		n.smu.Lock()
		done, moved := n.settled >= want, n.moved
		n.smu.Unlock()
		if done {
			return
		}
		select {
		case <-moved:
		case <-deadline.C:
			return
		case <-n.ctx.Done():
			return
		}
	}
}

// Adapter makes the adapter of a namespace; its signature fits
// namespaces.Config.Adapter.
func (n *RedisNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	p := n.cfg.Prefix
	r := &Redis{
		Memory:       NewMemory(recv, window),
		node:         n,
		nsp:          nsp,
		channel:      p + "#" + nsp + "#",
		reqChannel:   p + "-request#" + nsp + "#",
		respChannel:  p + "-response#" + nsp + "#",
		reqs:         newTracker(),
		requestsTime: n.cfg.RequestTimeout,
	}
	r.ownResp = r.respChannel + n.uid + "#"
	r.peerChannel = p + "-roomcast#" + nsp + "#"
	// Every room, a socket's own too: a broadcast to one socket id goes
	// on that room's channel.
	r.Memory.onRoom = func(room string, created, _ bool) {
		if !r.closed.Load() {
			n.change(r.channel+room+"#", created)
		}
	}
	n.mu.Lock()
	n.nsps[nsp] = r
	n.mu.Unlock()
	if err := n.ps.Subscribe(n.ctx, r.channel, r.reqChannel, r.respChannel, r.ownResp, r.peerChannel); err != nil {
		n.fail("subscribe", err)
	}
	return r
}

// Close stops the loops; pending publishes are dropped.
func (n *RedisNode) Close() error {
	n.cancel()
	n.pub.stop()
	err := n.ps.Close()
	n.wg.Wait()
	return err
}

// publish sends a batch of publications in one pipeline.
func (n *RedisNode) publish(batch []publication) {
	pubs := 0
	for _, p := range batch {
		if p.done == nil {
			pubs++
		}
	}
	defer func() {
		for _, p := range batch {
			if p.done != nil {
				close(p.done)
			}
		}
	}()
	for pubs > 0 && n.ctx.Err() == nil {
		start := time.Now()
		_, err := n.client.Pipelined(n.ctx, func(pipe redis.Pipeliner) error {
			for _, p := range batch {
				if p.done == nil {
					pipe.Publish(n.ctx, p.channel, p.payload)
				}
			}
			return nil
		})
		n.cfg.Stats.published(pubs, start, err)
		if err == nil || n.ctx.Err() != nil {
			return
		}
		// Redis is away: these publications are lost to the other nodes
		// (local delivery already happened). Retry the batch a few times
		// with a pause, so a short blip loses nothing.
		n.fail("publish", err)
		if !sleepCtx(n.ctx, 200*time.Millisecond) {
			return
		}
		if n.pub.backlog() > publishQueue/2 {
			return // falling behind: give up on this batch
		}
	}
}

// enqueue hands a publication to the publisher without blocking.
func (n *RedisNode) enqueue(channel string, payload []byte) error {
	return n.pub.queue(publication{channel: channel, payload: payload})
}

// Flush waits until the publications queued before it have been sent (see
// Flusher).
func (r *Redis) Flush(ctx context.Context) error {
	return flushThrough(ctx, func(done chan struct{}) error {
		return r.node.pub.queue(publication{done: done})
	})
}

// dispatch routes a message by channel to its namespace's adapter.
func (n *RedisNode) dispatch(channel string, payload []byte) {
	p := n.cfg.Prefix
	var nsp, rest string
	var kind byte
	switch {
	case strings.HasPrefix(channel, p+"-request#"):
		nsp, rest, kind = cut(channel[len(p)+len("-request#"):]), "", 'q'
	case strings.HasPrefix(channel, p+"-response#"):
		nsp, rest, kind = cut(channel[len(p)+len("-response#"):]), "", 'r'
	case strings.HasPrefix(channel, p+"#"):
		s := channel[len(p)+1:]
		nsp = cut(s)
		rest = strings.TrimSuffix(s[len(nsp)+1:], "#")
		kind = 'b'
	default:
		return
	}
	n.mu.RLock()
	r := n.nsps[nsp]
	n.mu.RUnlock()
	if r == nil {
		return
	}
	switch kind {
	case 'b':
		r.onBroadcast(rest, payload)
	case 'q':
		r.onRequest(payload)
	case 'r':
		r.onResponse(payload)
	}
}

// cut returns the namespace at the start of s (up to its '#').
func cut(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// Redis is the adapter of one namespace on the Redis pub/sub backplane,
// wire-compatible with Node's @socket.io/redis-adapter: local state and
// delivery are the embedded Memory's.
type Redis struct {
	*Memory
	node                                      *RedisNode
	nsp                                       string
	channel, reqChannel, respChannel, ownResp string
	// peerChannel carries nothing: only roomcast nodes subscribe to it, so
	// PUBSUB NUMSUB on it counts the nodes that answer a remote join
	// (Node's adapter, whose pattern is <prefix>#<nsp>#*, does not match it).
	peerChannel  string
	requestsTime time.Duration
	reqs         tracker
	closed       atomic.Bool
}

// wireOpts is the opts object of the protocol.
type wireOpts struct {
	Rooms  []string       `json:"rooms" msgpack:"rooms"`
	Except []string       `json:"except" msgpack:"except"`
	Flags  map[string]any `json:"flags" msgpack:"flags"`
}

func toWire(o Options) wireOpts {
	w := wireOpts{Rooms: o.Rooms, Except: o.Except, Flags: map[string]any{}}
	if w.Rooms == nil {
		w.Rooms = []string{}
	}
	if w.Except == nil {
		w.Except = []string{}
	}
	if o.Volatile {
		w.Flags["volatile"] = true
	}
	if o.Timeout > 0 {
		w.Flags["timeout"] = o.Timeout.Milliseconds()
	}
	return w
}

func fromWire(v any) Options {
	o, _ := fromWireKey(v)
	return o
}

// fromWireKey reads the opts object (decoded, or our own wireOpts) and the
// coalesce key it may carry in flags.coalesce (a roomcast extension that
// Node ignores).
func fromWireKey(v any) (Options, string) {
	var rooms, except any
	var flags map[string]any
	switch t := v.(type) {
	case wireOpts:
		rooms, except, flags = t.Rooms, t.Except, t.Flags
	case map[string]any:
		rooms, except = t["rooms"], t["except"]
		flags, _ = t["flags"].(map[string]any)
	}
	o := Options{Rooms: strings_(rooms), Except: strings_(except)}
	o.Volatile, _ = flags["volatile"].(bool)
	if t, ok := toInt(flags["timeout"]); ok && t > 0 {
		o.Timeout = time.Duration(t) * time.Millisecond
	}
	key, _ := flags["coalesce"].(string)
	return o, key
}

// wireFor renders the opts object of a broadcast of msg.
func wireFor(msg *Message, opts Options) wireOpts {
	w := toWire(opts)
	if msg.Key != "" {
		w.Flags["coalesce"] = msg.Key
	}
	return w
}

// Broadcast publishes msg to the other nodes (unless Local) and delivers it
// locally; an error means it was delivered locally only.
func (r *Redis) Broadcast(msg *Message, opts Options) error {
	var err error
	if !opts.Local {
		var b []byte
		b, err = encodeMsgpack([]any{r.node.uid, packetOf(r.nsp, msg), wireFor(msg, opts)})
		if err != nil {
			err = fmt.Errorf("encode broadcast: %w", err)
			r.node.fail("publish", err)
		} else {
			ch := r.channel
			if len(opts.Rooms) == 1 {
				ch += opts.Rooms[0] + "#"
			}
			err = r.node.enqueue(ch, b)
		}
	}
	r.Memory.Broadcast(msg, opts)
	return err
}

// Join adds the socket to rooms; when that subscribes this node to a
// room's channel, it returns once Redis has the subscription.
func (r *Redis) Join(id string, rooms ...string) {
	r.Memory.Join(id, rooms...)
	r.node.settle()
}

// onBroadcast delivers a broadcast from another node (or an emitter) and
// stores it for recovery like a local one. A room's broadcast is skipped
// only when the room has neither a local member nor a saved session.
func (r *Redis) onBroadcast(room string, payload []byte) {
	if room != "" && !r.Memory.HasRoom(room) {
		return
	}
	uid, msg, opts, err := decodeBroadcast(payload, r.nsp)
	if err != nil {
		r.node.fail("decode", err)
		return
	}
	if uid == r.node.uid || msg == nil {
		return
	}
	opts.Local = true
	r.Memory.Broadcast(msg, opts)
}

// decodeBroadcast reads a broadcast of the pub/sub protocol, the msgpack
// array [uid, packet, opts], for namespace nsp: msg is nil when the packet
// is another namespace's. It is pure, shared by the receive loop and the
// fuzz target.
func decodeBroadcast(payload []byte, nsp string) (uid string, msg *Message, opts Options, err error) {
	var v []any
	if err := decodeMsgpack(payload, &v); err != nil {
		return "", nil, Options{}, fmt.Errorf("broadcast: %w", err)
	}
	if len(v) < 3 {
		return "", nil, Options{}, fmt.Errorf("broadcast: %w: %d elements, want 3", ErrUndecodable, len(v))
	}
	uid, _ = v[0].(string)
	if _, ok := v[1].(map[string]any); !ok {
		return "", nil, Options{}, fmt.Errorf("broadcast: %w: packet is not a map", ErrUndecodable)
	}
	msg, ok := messageOf(v[1], nsp)
	if !ok {
		return uid, nil, Options{}, nil
	}
	opts, key := fromWireKey(v[2])
	msg.Volatile, msg.Key = opts.Volatile, key
	return uid, msg, opts, nil
}

// decodeRequest reads a request or a response of the pub/sub protocol:
// JSON, or msgpack when it carries binary data.
func decodeRequest(payload []byte) (map[string]any, error) {
	var v map[string]any
	var err error
	if len(payload) > 0 && payload[0] == '{' {
		err = decodeJSON(payload, &v)
	} else {
		err = decodeMsgpack(payload, &v)
	}
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	return v, nil
}

// BroadcastWithAck asks every node to deliver msg and report its
// recipients' count and acks.
func (r *Redis) BroadcastWithAck(msg *Message, opts Options, onCount func(int)) error {
	var qerr error
	if !opts.Local {
		id := randomID(6)
		b, err := encodeMsgpack(map[string]any{
			"uid": r.node.uid, "requestId": id, "type": reqBroadcast,
			"packet": packetOf(r.nsp, msg), "opts": toWire(opts),
		})
		if err == nil {
			timeout := opts.Timeout
			if timeout <= 0 {
				timeout = r.requestsTime
			}
			r.reqs.expectAcks(id, onCount, msg.OnAck, timeout)
			qerr = r.node.enqueue(r.reqChannel, b)
		} else {
			r.node.fail("publish", err)
			qerr = err
		}
	}
	r.Memory.BroadcastWithAck(msg, opts, onCount)
	return qerr
}

// ServerCount asks Redis how many nodes listen on the request channel.
func (r *Redis) ServerCount(ctx context.Context) int {
	n, err := numSub(ctx, r.node.client, false, r.reqChannel)
	if err != nil {
		r.node.fail("request", err)
		return 1
	}
	return max(n, 1)
}

// AddSockets applies locally at once and asks the other nodes. It returns
// once every other live roomcast node has applied the join and Redis has
// its room subscriptions (each answers the request's id after settling, see
// respond), so a broadcast to the rooms sent right after reaches the joined
// sockets everywhere. Node's adapter needs no wait (its pattern
// subscription hears every room), ignores the id of this form and never
// answers, so only roomcast nodes are waited for: those subscribed to
// peerChannel. A node that does not answer within joinWait (or the request
// timeout, if shorter) is no error: the join was published, as Node's own
// addSockets does without waiting at all.
func (r *Redis) AddSockets(opts Options, rooms []string) error {
	r.Memory.AddSockets(opts, rooms)
	r.node.settle()
	if opts.Local {
		return nil
	}
	wait := min(joinWait, r.requestsTime)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := randomID(6)
	send := func() error {
		return r.publishJSON(map[string]any{"uid": r.node.uid, "type": reqRemoteJoin, "requestId": id, "opts": toWire(opts), "rooms": rooms})
	}
	// Published even when Redis counts no other node (or cannot count):
	// the join must not be lost on a miscount.
	peers, err := numSub(ctx, r.node.client, false, r.peerChannel)
	if err != nil {
		r.node.fail("request", err)
	}
	others := peers - 1
	if others <= 0 {
		return send()
	}
	_, _, err = r.reqs.ask(ctx, id, askAny, others, wait, send)
	if errors.Is(err, ErrRequestTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func (r *Redis) DelSockets(opts Options, rooms []string) error {
	r.Memory.DelSockets(opts, rooms)
	if !opts.Local {
		return r.publishJSON(map[string]any{"uid": r.node.uid, "type": reqRemoteLeave, "opts": toWire(opts), "rooms": rooms})
	}
	return nil
}

func (r *Redis) DisconnectSockets(opts Options, close bool) error {
	r.Memory.DisconnectSockets(opts, close)
	if !opts.Local {
		return r.publishJSON(map[string]any{"uid": r.node.uid, "type": reqRemoteDisconnect, "opts": toWire(opts), "close": close})
	}
	return nil
}

func (r *Redis) publishJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		r.node.fail("publish", err)
		return err
	}
	return r.node.enqueue(r.reqChannel, b)
}

// FetchSockets gathers the matching sockets of every live node.
func (r *Redis) FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error) {
	local, _ := r.Memory.FetchSockets(ctx, opts)
	if opts.Local {
		return local, nil
	}
	remote, _, err := r.ask(ctx, askFetch, reqRemoteFetch, map[string]any{"opts": toWire(opts)})
	return append(local, remote...), err
}

// ServerSideEmit sends data to the other nodes' namespaces.
func (r *Redis) ServerSideEmit(ctx context.Context, data []any, withAck bool) ([]any, error) {
	if !withAck {
		return nil, r.publishJSON(map[string]any{"uid": r.node.uid, "type": reqServerSideEmit, "data": plain(data)})
	}
	_, responses, err := r.ask(ctx, askEmit, reqServerSideEmit, map[string]any{"data": plain(data)})
	return append([]any{}, responses...), err
}

// ask publishes a request and waits for one answer per other live node.
func (r *Redis) ask(ctx context.Context, kind askKind, typ int, body map[string]any) ([]SocketInfo, []any, error) {
	others := r.ServerCount(ctx) - 1
	if others <= 0 {
		return nil, nil, nil
	}
	id := randomID(6)
	body["uid"] = r.node.uid
	body["requestId"] = id
	body["type"] = typ
	return r.reqs.ask(ctx, id, kind, others, r.requestsTime, func() error {
		return r.publishJSON(body)
	})
}

// onRequest serves a request from another node (or an emitter).
func (r *Redis) onRequest(payload []byte) {
	req, err := decodeRequest(payload)
	if err != nil {
		r.node.fail("decode", err)
		return
	}
	typ, _ := toInt(req["type"])
	uid, _ := req["uid"].(string)
	id, _ := req["requestId"].(string)
	own := uid == r.node.uid
	switch typ {
	case reqSockets:
		if own {
			return
		}
		ids := r.Memory.Sockets(fromWire(map[string]any{"rooms": req["rooms"]}))
		r.respond(map[string]any{"requestId": id, "sockets": orEmpty(ids)})
	case reqAllRooms:
		if own {
			return
		}
		r.Memory.mu.RLock()
		rooms := make([]string, 0, len(r.Memory.rooms))
		for room := range r.Memory.rooms {
			rooms = append(rooms, room)
		}
		r.Memory.mu.RUnlock()
		r.respond(map[string]any{"requestId": id, "rooms": rooms})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		if own {
			return // applied locally when sent
		}
		if o, ok := req["opts"]; ok && o != nil {
			opts := fromWire(o)
			switch typ {
			case reqRemoteJoin:
				r.Memory.AddSockets(opts, strings_(req["rooms"]))
				if id != "" {
					// A roomcast asker waits for this (AddSockets);
					// respond sends it once the subscriptions settle.
					r.respond(map[string]any{"requestId": id})
				}
			case reqRemoteLeave:
				r.Memory.DelSockets(opts, strings_(req["rooms"]))
			default:
				closeConn, _ := req["close"].(bool)
				r.Memory.DisconnectSockets(opts, closeConn)
			}
			return
		}
		// The older form names one socket.
		sid, _ := req["sid"].(string)
		if sid == "" || len(r.Memory.Rooms(sid)) == 0 {
			return
		}
		switch typ {
		case reqRemoteJoin:
			room, _ := req["room"].(string)
			r.Memory.Join(sid, room)
		case reqRemoteLeave:
			room, _ := req["room"].(string)
			r.Memory.Leave(sid, room)
		default:
			closeConn, _ := req["close"].(bool)
			r.Memory.recv.Disconnect(sid, closeConn)
		}
		r.respond(map[string]any{"requestId": id})
	case reqRemoteFetch:
		if own {
			return
		}
		sockets, _ := r.Memory.FetchSockets(context.Background(), fromWire(req["opts"]))
		if sockets == nil {
			sockets = []SocketInfo{}
		}
		r.respond(map[string]any{"requestId": id, "sockets": sockets})
	case reqServerSideEmit:
		if own {
			return
		}
		data, _ := req["data"].([]any)
		var ack func(any)
		if id != "" {
			var once sync.Once
			ack = func(v any) {
				once.Do(func() {
					b, err := json.Marshal(map[string]any{"type": reqServerSideEmit, "requestId": id, "data": plain1(v)})
					if err == nil {
						r.node.enqueue(r.respChannel, b)
					}
				})
			}
		}
		// User handlers may be slow: never on the receive loop.
		go r.Memory.recv.ServerSideEmit(data, ack)
	case reqBroadcast:
		if own || r.reqs.ownsAcks(id) {
			return
		}
		msg, ok := messageOf(req["packet"], r.nsp)
		if !ok {
			return
		}
		opts := fromWire(req["opts"])
		opts.Local = true
		msg.AckTimeout = opts.Timeout
		msg.OnAck = func(args []any) {
			b, err := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": id, "packet": plain1(ackArg(args))})
			if err == nil {
				r.node.enqueue(r.respChannel, b)
			}
		}
		r.Memory.BroadcastWithAck(msg, opts, func(n int) {
			r.respond(map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": n})
		})
	}
}

// ackArg is what a remote ack carries: the client's first argument.
func ackArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// respond publishes a JSON response on the shared response channel (Node
// adapters listen there by default).
//
// An answer goes out once Redis has applied this node's subscription
// changes so far: a socket that joined a room here on another node's
// request (socketsJoin) hears the room's broadcasts by the time the asker
// learns anything from this node, e.g. by fetching the sockets. The wait
// runs off the receive loop (which reads the PING answers), at most
// maxSettling at once and joinWait each.
func (r *Redis) respond(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		r.node.fail("publish", err)
		return
	}
	n := r.node
	if !n.unsettled() {
		n.enqueue(r.respChannel, b)
		return
	}
	select {
	case n.settling <- struct{}{}:
	default:
		n.enqueue(r.respChannel, b)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.settling }()
		n.settle()
		n.enqueue(r.respChannel, b)
	}()
}

// onResponse matches a response to a pending request.
func (r *Redis) onResponse(payload []byte) {
	resp, err := decodeRequest(payload)
	if err != nil {
		r.node.fail("decode", err)
		return
	}
	id, _ := resp["requestId"].(string)
	typ, _ := toInt(resp["type"])
	switch {
	case typ == reqBroadcastClientCount:
		n, _ := toInt(resp["clientCount"])
		if r.reqs.onCount(id, int(n)) {
			return
		}
	case typ == reqBroadcastAck:
		if r.reqs.onAck(id, resp["packet"]) {
			return
		}
	}
	r.reqs.answer(id, askAny, resp["sockets"], resp["data"])
}

func socketInfo(v any) SocketInfo {
	m, _ := v.(map[string]any)
	id, _ := m["id"].(string)
	hs, _ := m["handshake"].(map[string]any)
	return SocketInfo{ID: id, Handshake: hs, Rooms: strings_(m["rooms"]), Data: m["data"]}
}

// Close unsubscribes the namespace.
func (r *Redis) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	n := r.node
	n.mu.Lock()
	delete(n.nsps, r.nsp)
	n.mu.Unlock()
	r.Memory.mu.RLock()
	for room := range r.Memory.rooms {
		n.change(r.channel+room+"#", false)
	}
	for room := range r.Memory.held {
		n.change(r.channel+room+"#", false)
	}
	r.Memory.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n.ctx.Err() == nil {
		_ = n.ps.Unsubscribe(ctx, r.channel, r.reqChannel, r.respChannel, r.ownResp, r.peerChannel)
	}
	return r.Memory.Close()
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func strings_(v any) []string {
	switch t := v.(type) {
	case []string:
		return t
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			switch s := e.(type) {
			case string:
				out = append(out, s)
			default:
				if n, ok := toInt(e); ok {
					out = append(out, strconv.FormatInt(n, 10))
				}
			}
		}
		return out
	}
	return nil
}
