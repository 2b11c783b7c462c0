package adapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Defaults of NATSConfig.
const (
	DefaultNATSPrefix    = "roomcast"
	DefaultNATSHeartbeat = 5 * time.Second
	// natsReceiveQueue bounds the messages received and not yet handed to
	// the adapters; past it NATS drops them as a slow consumer (counted).
	natsReceiveQueue = 1 << 16
)

// NATSConfig configures a NATS backplane node.
type NATSConfig struct {
	// URL is the NATS server, or several separated by commas. Required.
	URL string
	// Prefix is the first token of every subject. "": "roomcast".
	Prefix string
	// RequestTimeout bounds cross-node requests. 0: 5 s.
	RequestTimeout time.Duration
	// Heartbeat is how often the node tells the others it lives; a node not
	// heard from for two heartbeats and a second no longer counts. 0: 5 s.
	Heartbeat time.Duration
	// Logger: nil means none.
	Logger *zap.Logger
	// OnError observes backplane errors (for metrics); op is "publish",
	// "subscribe", "request" or "decode". Optional.
	OnError func(op string, err error)
	// Options are added to the connection's options (TLS, credentials).
	Options []nats.Option
	// Stats observes the traffic (for metrics). Optional.
	Stats *Stats
}

// natsNode is what the NATS backplanes share: the connection, its
// receive dispatcher, the live-node count and the ordered publisher.
type natsNode struct {
	cfg    NATSConfig
	log    *zap.Logger
	uid    string
	nc     *nats.Conn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errLog rateLog

	routes *routes
	in     chan *nats.Msg
	pub    *jobs

	// subGen counts the subscriptions made; flushed is the highest count
	// the server is known to have (a flush after it came back).
	subGen, flushed atomic.Uint64

	mu   sync.Mutex
	subs map[string]*nats.Subscription // by subject
	seen map[string]time.Time          // other nodes' uids, last heard
}

func newNATSNode(cfg NATSConfig, name string) (*natsNode, error) {
	if cfg.URL == "" {
		return nil, errors.New("adapter: NATSConfig.URL is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultNATSPrefix
	}
	if strings.ContainsAny(cfg.Prefix, " \t\r\n*>") || strings.HasPrefix(cfg.Prefix, ".") || strings.HasSuffix(cfg.Prefix, ".") {
		return nil, fmt.Errorf("adapter: NATS prefix %q is not a subject", cfg.Prefix)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRedisRequestTimeout
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultNATSHeartbeat
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &natsNode{cfg: cfg, log: log.Named(name), uid: randomID(8), ctx: ctx, cancel: cancel,
		in: make(chan *nats.Msg, natsReceiveQueue), subs: make(map[string]*nats.Subscription), seen: make(map[string]time.Time)}
	n.routes = newRoutes("", n.fail)
	opts := []nats.Option{
		nats.Name("roomcast " + n.uid),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// Reconnect with backoff: 100 ms doubling to 2 s, plus jitter.
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return min(100*time.Millisecond<<min(attempts, 5), 2*time.Second) + time.Duration(attempts%7)*10*time.Millisecond
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && n.ctx.Err() == nil {
				n.fail("subscribe", fmt.Errorf("disconnected: %w", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.log.Info("nats connection restored")
			// The subscriptions are restored by the client; say hello again
			// so the others count this node at once. (nc, not n.nc: after a
			// failed first connect this runs before Connect returns.)
			n.heartbeatOn(nc, cmInitialHeartbeat)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.fail("subscribe", err)
		}),
	}
	nc, err := nats.Connect(cfg.URL, append(opts, cfg.Options...)...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("adapter: nats: %w", err)
	}
	n.nc = nc
	n.pub = newJobs(n.fail)
	n.subscribe(n.heartbeatSubject())
	n.wg.Add(2)
	go n.receive()
	go n.beat()
	return n, nil
}

// UID is the node's id on the backplane.
func (n *natsNode) UID() string { return n.uid }

func (n *natsNode) fail(op string, err error) {
	if n.cfg.OnError != nil {
		n.cfg.OnError(op, err)
	}
	n.errLog.log(n.log, "nats error", zap.String("op", op), zap.Error(err))
}

// token renders a namespace or room name as one subject token: base64url,
// so '.', '*', '>' and spaces in names cannot change a subject's meaning.
func token(s string) string { return "n" + base64.RawURLEncoding.EncodeToString([]byte(s)) }

func untoken(t string) (string, bool) {
	if !strings.HasPrefix(t, "n") {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(t[1:])
	return string(b), err == nil
}

// Subjects: prefix.<nsp>.all (a namespace's broadcasts and requests),
// prefix.<nsp>.r.<room> (a room's broadcasts, heard only by the nodes with
// members there), prefix.<nsp>.u.<uid> (answers to one node) and
// prefix._hb (heartbeats).
func natsNspSubject(prefix, nsp string) string { return prefix + "." + token(nsp) + ".all" }
func natsRoomSubject(prefix, nsp, room string) string {
	return prefix + "." + token(nsp) + ".r." + token(room)
}
func natsNodeSubject(prefix, nsp, uid string) string {
	return prefix + "." + token(nsp) + ".u." + uid
}
func (n *natsNode) heartbeatSubject() string { return n.cfg.Prefix + "._hb" }

// subscribe adds subject to the node's subscriptions; every message of
// every subscription goes through one queue, so they are handled in the
// order the connection received them.
func (n *natsNode) subscribe(subject string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[subject] != nil || n.ctx.Err() != nil {
		return
	}
	sub, err := n.nc.ChanSubscribe(subject, n.in)
	if err != nil {
		n.fail("subscribe", err)
		return
	}
	sub.SetPendingLimits(-1, -1) // the shared queue bounds them
	n.subs[subject] = sub
	n.subGen.Add(1)
}

// queue hands a publish to the ordered publisher, or refuses it with
// ErrBackplaneDown while NATS is disconnected (rather than leaving it to
// the client's reconnect buffer, which may or may not deliver it).
func (n *natsNode) queue(job func()) error {
	if !n.nc.IsConnected() {
		n.fail("publish", errNATSDown)
		return errNATSDown
	}
	return n.pub.queue(job)
}

// settle waits until the server has the subscriptions made so far, so a
// socket that has joined a room hears the room's broadcasts from other
// nodes from then on. Every caller waits for its own subscriptions: a
// flush another join started earlier may not cover them. The wait is
// bounded by the request timeout and skipped while disconnected (the
// client resubscribes on reconnect); a flush that fails is counted.
func (n *natsNode) settle() {
	gen := n.subGen.Load()
	if n.flushed.Load() >= gen || !n.nc.IsConnected() {
		return
	}
	if err := n.nc.FlushTimeout(n.cfg.RequestTimeout); err != nil {
		n.fail("subscribe", err)
		return
	}
	for {
		f := n.flushed.Load()
		if f >= gen || n.flushed.CompareAndSwap(f, gen) {
			return
		}
	}
}

func (n *natsNode) unsubscribe(subject string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sub := n.subs[subject]; sub != nil {
		delete(n.subs, subject)
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.fail("subscribe", err)
		}
	}
}

// receive hands every message to its namespace's adapter, in order.
func (n *natsNode) receive() {
	defer n.wg.Done()
	hb := n.heartbeatSubject()
	for {
		select {
		case <-n.ctx.Done():
			return
		case m := <-n.in:
			if m.Subject == hb {
				n.onHeartbeat(m.Data)
				continue
			}
			rest, ok := strings.CutPrefix(m.Subject, n.cfg.Prefix+".")
			if !ok {
				continue
			}
			n.cfg.Stats.received()
			tok, _, _ := strings.Cut(rest, ".")
			nsp, ok := untoken(tok)
			if !ok {
				n.fail("decode", fmt.Errorf("%w: subject %q", ErrUndecodable, m.Subject))
				continue
			}
			n.routes.deliver(nsp, m.Data, "")
		}
	}
}

// heartbeat publishes the node's presence (typ cmInitialHeartbeat asks
// the others to answer at once, cmAdapterClose says goodbye).
func (n *natsNode) heartbeat(typ int) { n.heartbeatOn(n.nc, typ) }

func (n *natsNode) heartbeatOn(nc *nats.Conn, typ int) {
	b, _ := json.Marshal(map[string]any{"uid": n.uid, "type": typ})
	if err := nc.Publish(n.heartbeatSubject(), b); err != nil && n.ctx.Err() == nil {
		n.fail("publish", err)
	}
}

func (n *natsNode) beat() {
	defer n.wg.Done()
	n.heartbeat(cmInitialHeartbeat)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.heartbeat(cmHeartbeat)
			n.mu.Lock()
			for uid, at := range n.seen {
				if time.Since(at) > n.liveFor() {
					delete(n.seen, uid)
				}
			}
			n.mu.Unlock()
		}
	}
}

func (n *natsNode) liveFor() time.Duration { return 2*n.cfg.Heartbeat + time.Second }

func (n *natsNode) onHeartbeat(b []byte) {
	m, err := decodeClusterMsg(b)
	if err != nil {
		n.fail("decode", err)
		return
	}
	if m.UID == "" || m.UID == n.uid || len(m.UID) > 64 {
		return
	}
	n.mu.Lock()
	if m.Type == cmAdapterClose {
		delete(n.seen, m.UID)
	} else if len(n.seen) < 100_000 || n.seen[m.UID] != (time.Time{}) {
		n.seen[m.UID] = time.Now()
	}
	n.mu.Unlock()
	if m.Type == cmInitialHeartbeat {
		n.heartbeat(cmHeartbeat)
	}
}

// serverCount is the number of live nodes, this one included.
func (n *natsNode) serverCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := 1
	for _, at := range n.seen {
		if time.Since(at) <= n.liveFor() {
			live++
		}
	}
	return live
}

// close says goodbye, stops the loops and closes the connection.
func (n *natsNode) close() error {
	n.pub.stop()
	n.heartbeat(cmAdapterClose)
	n.nc.FlushTimeout(time.Second)
	n.cancel()
	n.nc.Close()
	n.wg.Wait()
	return nil
}

// NATSNode is one process's connection to the NATS backplane: broadcasts
// on a subject per namespace and per room, with a node subscribed to a
// room's subject only while it has members there; cluster operations as
// requests on the namespace's subject answered on the asking node's own.
type NATSNode struct {
	*natsNode
}

// NewNATSNode connects to NATS (retrying in the background while it cannot)
// and starts the node's loops.
func NewNATSNode(cfg NATSConfig) (*NATSNode, error) {
	n, err := newNATSNode(cfg, "nats")
	if err != nil {
		return nil, err
	}
	return &NATSNode{n}, nil
}

// Close says goodbye to the other nodes and closes the connection.
func (n *NATSNode) Close() error { return n.close() }

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
func (n *NATSNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.queue)
	c.stats = n.cfg.Stats
	p := n.cfg.Prefix
	c.link = &natsLink{n: n.natsNode, prefix: p, nsp: nsp}
	c.Memory.onRoom = func(room string, created, public bool) {
		if !public {
			return
		}
		if created {
			n.subscribe(natsRoomSubject(p, nsp, room))
		} else {
			n.unsubscribe(natsRoomSubject(p, nsp, room))
		}
	}
	n.routes.add(nsp, c)
	n.subscribe(natsNspSubject(p, nsp))
	n.subscribe(natsNodeSubject(p, nsp, n.uid))
	return &natsAdapter{cluster: c, n: n.natsNode}
}

// natsAdapter unsubscribes its subjects on Close.
type natsAdapter struct {
	*cluster
	n *natsNode
}

// Join adds the socket to rooms; when that subscribes this node to a
// room's subject, it returns once NATS has the subscription.
func (a *natsAdapter) Join(id string, rooms ...string) {
	a.cluster.Join(id, rooms...)
	a.n.settle()
}

func (a *natsAdapter) Close() error {
	p := a.n.cfg.Prefix
	a.n.routes.remove(a.nsp)
	a.n.unsubscribe(natsNspSubject(p, a.nsp))
	a.n.unsubscribe(natsNodeSubject(p, a.nsp, a.n.uid))
	a.Memory.mu.RLock()
	rooms := make([]string, 0, len(a.Memory.rooms))
	for room := range a.Memory.rooms {
		if _, isSid := a.Memory.sids[room]; !isSid {
			rooms = append(rooms, room)
		}
	}
	a.Memory.mu.RUnlock()
	for _, room := range rooms {
		a.n.unsubscribe(natsRoomSubject(p, a.nsp, room))
	}
	return a.cluster.Memory.Close()
}

// natsLink publishes cluster messages on the namespace's subjects.
type natsLink struct {
	n      *natsNode
	prefix string
	nsp    string
}

func (l *natsLink) publish(_ context.Context, m clusterMsg) (string, error) {
	return "", natsPublish(l.n.nc, l.prefix, m)
}

// natsPublish sends m on its namespace's subject, or on its room's subject
// when it is a broadcast to one room (see roomOf).
func natsPublish(nc *nats.Conn, prefix string, m clusterMsg) error {
	subject := natsNspSubject(prefix, m.Nsp)
	if room, ok := roomOf(m); ok {
		subject = natsRoomSubject(prefix, m.Nsp, room)
	}
	b, err := encodeClusterMsg(m)
	if err != nil {
		return err
	}
	return nc.Publish(subject, b)
}

func (l *natsLink) respond(_ context.Context, uid string, m clusterMsg) error {
	b, err := encodeClusterMsg(m)
	if err != nil {
		return err
	}
	return l.n.nc.Publish(natsNodeSubject(l.prefix, l.nsp, uid), b)
}

func (l *natsLink) serverCount(context.Context) int { return l.n.serverCount() }
