package adapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Defaults of JetStreamConfig.
const (
	DefaultJetStreamMaxAge  = 24 * time.Hour
	DefaultJetStreamMaxMsgs = 100_000
	// jsMaxReplicas is JetStream's own bound on a stream's replicas.
	jsMaxReplicas = 5
	// jsFailover bounds how long a publish to the stream is retried while
	// the stream does not answer (a replicated stream electing a new
	// leader after its leader's server died takes seconds). Retries carry
	// the same message id, so the stream stores the message once. After an
	// outage this long, publishes fail after one attempt until one succeeds.
	jsFailover = 30 * time.Second
	// The live reader fetches up to jsReadBatch messages per request, each
	// request open for up to jsReadWait; the server sends a heartbeat every
	// jsReadHeartbeat while it has nothing, so a consumer that is gone (its
	// server died) shows within two of them.
	jsReadBatch     = 500
	jsReadWait      = 5 * time.Second
	jsReadHeartbeat = time.Second
	// jsReaderIdle: the server removes a reader's consumer not fetched from
	// for this long (its node died without deleting it).
	jsReaderIdle = time.Minute
)

// JetStreamConfig configures the NATS JetStream backplane.
type JetStreamConfig struct {
	NATSConfig
	// Stream is the JetStream stream of the broadcasts, created when
	// missing. "": the prefix in capitals, dots as underscores
	// ("ROOMCAST").
	Stream string
	// MaxAge and MaxMsgs bound what the stream keeps (the retention: a node
	// cut off for longer, and a client away for longer, cannot catch up).
	// 0: 24 h and 100,000 messages. JetStream refuses a MaxAge under
	// 100 ms.
	MaxAge  time.Duration
	MaxMsgs int64
	// Replicas of the stream and the session bucket, 1 to 5 (more than 1
	// needs a NATS cluster with JetStream on at least that many servers).
	// 0: 1.
	Replicas int
}

// JetStreamNode is one process's connection to the NATS JetStream
// backplane: broadcasts and room operations go through one stream, which
// every node reads in order with a consumer of its own, so a node that was
// cut off resumes after the last message it read, and every socket gets a
// broadcast's stream sequence as its recovery offset; requests and answers
// go over core NATS. Sessions for connection state recovery live in a
// JetStream key-value bucket, so a client can recover on any node.
//
// When JetStream cannot be reached at start (NATS down, or up without
// JetStream), the node starts anyway, as the nats backplane does: it serves
// its own sockets, refuses publishes with ErrBackplaneDown, refuses
// recoveries (fresh sessions), counts the failures and sets the stream up
// in the background, retrying with backoff, as soon as JetStream answers.
type JetStreamNode struct {
	*natsNode
	jcfg    JetStreamConfig
	js      jetstream.JetStream
	subject string // the stream's subjects: subject + "." + namespace token

	// stop ends the set-up loop and publish retries at Close (before the
	// publisher is drained: what is queued gets one attempt each).
	stop    context.Context
	stopNow context.CancelFunc
	// drain bounds the publishes to the stream: it ends RequestTimeout
	// after Close began (the queued publishes not sent by then fail), or
	// once the publisher is drained.
	drain    context.Context
	drainNow context.CancelFunc
	pubID    atomic.Uint64 // numbers this node's publishes (message ids)
	outageAt atomic.Int64  // unix ns of the first failed publish of an outage, 0: none

	mu      sync.Mutex
	stream  jetstream.Stream // nil until set up
	lastSeq uint64           // newest stream message read

	// The session bucket, opened on first use. kvMu is never held across
	// a network call (nor is mu): one caller opens the bucket, the others
	// wait for its result or their own context.
	kvMu     sync.Mutex
	sessions jetstream.KeyValue
	kvOpen   *kvOpening // the opening under way, nil: none
}

// kvOpening is an opening of the session bucket under way: done is closed
// once err is set.
type kvOpening struct {
	done chan struct{}
	err  error
}

// errJSNotReady refuses publishes while the stream is not set up.
var errJSNotReady = fmt.Errorf("jetstream: stream not set up: %w", ErrBackplaneDown)

// NewJetStreamNode connects, creates or updates the stream, and starts
// reading it from its end. When JetStream does not answer it returns the
// node at once and goes on in the background (see JetStreamNode); a stream
// configuration JetStream refuses (replicas on a single server, subjects
// of another stream, …) is an error.
func NewJetStreamNode(cfg JetStreamConfig) (*JetStreamNode, error) {
	if cfg.MaxAge < 0 || cfg.MaxMsgs < 0 || cfg.Replicas < 0 || cfg.Replicas > jsMaxReplicas {
		return nil, fmt.Errorf("adapter: jetstream: max age %v, max messages %d, replicas %d: want max age and max messages not negative, replicas 0 to %d",
			cfg.MaxAge, cfg.MaxMsgs, cfg.Replicas, jsMaxReplicas)
	}
	base, err := newNATSNode(cfg.NATSConfig, "nats-jetstream")
	if err != nil {
		return nil, err
	}
	cfg.NATSConfig = base.cfg
	if cfg.Stream == "" {
		cfg.Stream = strings.ToUpper(strings.ReplaceAll(cfg.Prefix, ".", "_"))
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultJetStreamMaxAge
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultJetStreamMaxMsgs
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	n := &JetStreamNode{natsNode: base, jcfg: cfg, subject: cfg.Prefix + ".js"}
	n.stop, n.stopNow = context.WithCancel(context.Background())
	n.drain, n.drainNow = context.WithCancel(context.Background())
	if n.js, err = jetstream.New(base.nc); err != nil {
		n.stopNow()
		n.drainNow()
		base.close()
		return nil, fmt.Errorf("adapter: jetstream: %w", err)
	}
	if !base.nc.IsConnected() {
		n.fail("subscribe", fmt.Errorf("jetstream: %w", errNATSDown))
	} else if err := n.setup(); err != nil {
		if badStreamConfig(err) {
			n.stopNow()
			n.drainNow()
			base.close()
			return nil, fmt.Errorf("adapter: %w", err)
		}
		n.fail("subscribe", err)
	} else {
		return n, nil
	}
	n.log.Warn("jetstream not available, the node serves its own sockets and retries", zap.String("stream", cfg.Stream))
	n.wg.Add(1)
	go n.setupLoop()
	return n, nil
}

// badStreamConfig tells whether JetStream answered and refused the stream's
// configuration: retrying cannot help, the operator must change it.
func badStreamConfig(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode {
	case 10052, // invalid stream configuration (max age under 100 ms, a storage change, …)
		10058, // stream name in use (with another configuration)
		10065, // subjects overlap with another stream
		10074: // replicas > 1 on a server without clustering
		return true
	}
	return false
}

// setupLoop sets the stream up once JetStream answers, retrying with
// backoff (100 ms doubling to 2 s), every failure counted.
func (n *JetStreamNode) setupLoop() {
	defer n.wg.Done()
	wait := 100 * time.Millisecond
	for {
		if !sleepCtx(n.stop, wait) {
			return
		}
		wait = min(2*wait, 2*time.Second)
		if !n.nc.IsConnected() {
			continue // the NATS client reconnects (and counts that)
		}
		err := n.setup()
		if err == nil {
			n.log.Info("jetstream stream set up", zap.String("stream", n.jcfg.Stream))
			return
		}
		if n.stop.Err() != nil {
			return
		}
		n.fail("subscribe", err)
	}
}

// setup creates or updates the stream and starts reading it after its
// last message.
func (n *JetStreamNode) setup() error {
	ctx, cancel := context.WithTimeout(n.stop, n.cfg.RequestTimeout)
	defer cancel()
	cfg := n.jcfg
	stream, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{n.subject + ".>"},
		MaxAge: cfg.MaxAge, MaxMsgs: cfg.MaxMsgs, Replicas: cfg.Replicas,
		Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage,
		// Publish retries (see jsFailover) carry a message id: the stream
		// remembers ids long enough to store each message once.
		Duplicates: min(jsFailover+2*n.cfg.RequestTimeout, cfg.MaxAge),
	})
	if err != nil {
		return fmt.Errorf("jetstream: stream %s: %w", cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("jetstream: stream %s: %w", cfg.Stream, err)
	}
	n.mu.Lock()
	n.stream, n.lastSeq = stream, info.State.LastSeq
	n.mu.Unlock()
	n.wg.Add(1)
	go n.read(stream)
	return nil
}

// current returns the stream, nil while it is not set up.
func (n *JetStreamNode) current() jetstream.Stream {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stream
}

// read follows the stream from after lastSeq, in order, with a consumer of
// its own. Whatever goes wrong (the consumer's server died, a fetch
// failed, a message went missing between the server and this node) ends
// the consumer: the next one starts after the last message delivered, so
// nothing is skipped while the stream holds it. Every failure is counted.
func (n *JetStreamNode) read(stream jetstream.Stream) {
	defer n.wg.Done()
	var cons jetstream.Consumer
	var next uint64 // the consumer sequence of the next message
	wait := 100 * time.Millisecond
	forget := func() { // the next consumer starts after the last message delivered
		if cons != nil && n.nc.IsConnected() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
			stream.DeleteConsumer(ctx, cons.CachedInfo().Name) // else removed when idle
			cancel()
		}
		cons = nil
	}
	drop := func(err error) {
		n.fail("subscribe", fmt.Errorf("jetstream: reader: %w", err))
		forget()
		sleepCtx(n.ctx, wait)
		wait = min(2*wait, 2*time.Second)
	}
	for n.ctx.Err() == nil {
		if cons == nil {
			if !n.nc.IsConnected() {
				sleepCtx(n.ctx, wait) // the NATS client reconnects (and counts that)
				wait = min(2*wait, 2*time.Second)
				continue
			}
			n.mu.Lock()
			from := n.lastSeq + 1
			n.mu.Unlock()
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
			c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
				FilterSubject:     n.subject + ".>",
				DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
				OptStartSeq:       from,
				AckPolicy:         jetstream.AckNonePolicy,
				InactiveThreshold: jsReaderIdle,
				MemoryStorage:     true,
				Replicas:          1,
			})
			cancel()
			if err != nil {
				if n.ctx.Err() == nil {
					drop(err)
				}
				continue
			}
			cons, next = c, 1
		}
		ctx, cancel := context.WithTimeout(n.ctx, jsReadWait)
		batch, err := cons.Fetch(jsReadBatch, jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(jsReadHeartbeat))
		if err != nil {
			cancel()
			if n.ctx.Err() == nil {
				drop(err)
			}
			continue
		}
		var gap error
		for m := range batch.Messages() {
			if gap != nil {
				continue
			}
			md, err := m.Metadata()
			if err == nil && md.Sequence.Consumer != next {
				err = fmt.Errorf("message %d arrived as %d", next, md.Sequence.Consumer)
			}
			if err != nil {
				gap = err // the next consumer starts after the last delivered
				continue
			}
			next++
			n.cfg.Stats.received()
			n.deliver(m.Subject(), md.Sequence.Stream, m.Data())
		}
		cancel()
		err = batch.Error()
		// The fetch's context ended before the server's end of the
		// request came (a loaded machine): the client library then drops
		// the messages it received but had not handed out yet, and the
		// server may still send some to the request's inbox, which nobody
		// reads any more. With AckNone the consumer has moved past them,
		// and the gap would show only when a later message arrives, which
		// in a quiet namespace may be never. So a new consumer starts
		// after the last message delivered (not a failure: not counted).
		late := errors.Is(err, context.DeadlineExceeded)
		if late {
			err = nil
		}
		if gap != nil {
			err = gap
		}
		switch {
		case n.ctx.Err() != nil:
			return
		case err != nil:
			drop(err)
		case late:
			n.log.Debug("jetstream reader: fetch ended late, reading on with a new consumer")
			forget()
		default:
			wait = 100 * time.Millisecond
		}
	}
}

// deliver hands a stream message to its namespace's adapter.
func (n *JetStreamNode) deliver(subject string, seq uint64, data []byte) {
	// A recovery attaches its socket under n.mu once lastSeq has not
	// passed what it read: a message after that is delivered below, to
	// the attached socket.
	n.mu.Lock()
	n.lastSeq = max(n.lastSeq, seq)
	n.mu.Unlock()
	nsp, ok := untoken(strings.TrimPrefix(subject, n.subject+"."))
	if !ok {
		n.fail("decode", fmt.Errorf("%w: subject %q", ErrUndecodable, subject))
		return
	}
	n.routes.deliver(nsp, data, jsOffset(seq))
}

// jsOffset renders a stream sequence as a recovery offset ("0-<seq>", which
// OffsetAfter orders).
func jsOffset(seq uint64) string { return "0-" + strconv.FormatUint(seq, 10) }

func jsSeq(offset string) (uint64, bool) {
	s, ok := strings.CutPrefix(offset, "0-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

// Close sends what is queued for the stream (one attempt each: a publish
// being retried gives up, and the whole drain is bounded by
// RequestTimeout), says goodbye and stops reading.
func (n *JetStreamNode) Close() error {
	n.stopNow()
	t := time.AfterFunc(n.cfg.RequestTimeout, n.drainNow)
	defer t.Stop()
	err := n.close()
	n.drainNow()
	return err
}

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
func (n *JetStreamNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.queue)
	c.stats = n.cfg.Stats
	c.logOffsets = true
	c.async = n.queueJS
	c.link = &jsLink{natsLink: natsLink{n: n.natsNode, prefix: n.cfg.Prefix, nsp: nsp}, n: n}
	n.routes.add(nsp, c)
	n.subscribe(natsNspSubject(n.cfg.Prefix, nsp))
	n.subscribe(natsNodeSubject(n.cfg.Prefix, nsp, n.uid))
	return &jsAdapter{cluster: c, n: n, window: window}
}

// jsLink: durable messages go into the stream, ephemeral ones (requests
// with answers) over core NATS.
type jsLink struct {
	natsLink
	n *JetStreamNode
}

// errNATSDown: NATS is disconnected (the client is reconnecting). The
// publisher's queue refuses new publishes with it at once; one already
// queued for the stream is retried (see publishDurable).
var errNATSDown = fmt.Errorf("nats: %w", ErrBackplaneDown)

// queueJS hands a publish to the ordered publisher, or refuses it with
// ErrBackplaneDown while NATS is disconnected or the stream is not set up.
func (n *JetStreamNode) queueJS(job func()) error {
	if n.current() == nil {
		n.fail("publish", errJSNotReady)
		return errJSNotReady
	}
	return n.queue(job)
}

func (l *jsLink) publish(ctx context.Context, m clusterMsg) (string, error) {
	if ephemeral(m) {
		if !l.n.nc.IsConnected() {
			return "", errNATSDown
		}
		return jsPublish(ctx, l.n.js, l.n.nc, l.prefix, l.n.subject, m)
	}
	if l.n.current() == nil {
		return "", errJSNotReady
	}
	b, err := encodeClusterMsg(m)
	if err != nil {
		return "", err
	}
	seq, err := l.n.publishDurable(l.n.subject+"."+token(m.Nsp), b)
	if err != nil {
		return "", err
	}
	return jsOffset(seq), nil
}

// publishDurable adds a message to the stream. While the stream does not
// answer (its leader's server died and the others elect a new one; this
// node's server died and the client reconnects to another), it retries
// with backoff for up to jsFailover from the outage's first failure; every
// attempt carries the same message id, so an attempt that was stored but
// not acknowledged is not stored twice. Each failed attempt is counted.
func (n *JetStreamNode) publishDurable(subject string, b []byte) (uint64, error) {
	msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	id := n.uid + "-" + strconv.FormatUint(n.pubID.Add(1), 36)
	wait := 50 * time.Millisecond
	for {
		var err error
		if !n.nc.IsConnected() {
			err = errNATSDown
		} else {
			ctx, cancel := context.WithTimeout(n.drain, n.cfg.RequestTimeout)
			var ack *jetstream.PubAck
			ack, err = n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithRetryAttempts(0))
			cancel()
			if err == nil {
				n.outageAt.Store(0)
				return ack.Sequence, nil
			}
		}
		if n.stop.Err() != nil || !transientPublish(err) {
			return 0, err
		}
		now := time.Now().UnixNano()
		n.outageAt.CompareAndSwap(0, now)
		if time.Duration(now-n.outageAt.Load()) >= jsFailover {
			return 0, err
		}
		n.fail("publish", fmt.Errorf("jetstream: retrying: %w", err))
		if !sleepCtx(n.stop, wait) {
			return 0, err
		}
		wait = min(2*wait, time.Second)
	}
}

// transientPublish tells whether a failed publish may succeed when retried:
// anything but a refusal of the message itself (too large, bad request).
func transientPublish(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code >= 500
	}
	return !errors.Is(err, nats.ErrMaxPayload) && !errors.Is(err, nats.ErrBadSubject) && !errors.Is(err, jetstream.ErrInvalidOption)
}

type natsPublisher interface {
	Publish(subj string, data []byte) error
}

// jsPublish adds m to the stream (subject: stream subject + namespace
// token) and returns its offset, or publishes it over core NATS when it is
// ephemeral.
func jsPublish(ctx context.Context, js jetstream.JetStream, nc natsPublisher, prefix, subject string, m clusterMsg) (string, error) {
	b, err := encodeClusterMsg(m)
	if err != nil {
		return "", err
	}
	if ephemeral(m) {
		return "", nc.Publish(natsNspSubject(prefix, m.Nsp), b)
	}
	ack, err := js.Publish(ctx, subject+"."+token(m.Nsp), b)
	if err != nil {
		return "", err
	}
	return jsOffset(ack.Sequence), nil
}

// jsAdapter keeps recovery sessions in a key-value bucket and replays
// missed packets from the stream.
type jsAdapter struct {
	*cluster
	n      *JetStreamNode
	window time.Duration
}

func (a *jsAdapter) Close() error {
	p := a.n.cfg.Prefix
	a.n.routes.remove(a.nsp)
	a.n.unsubscribe(natsNspSubject(p, a.nsp))
	a.n.unsubscribe(natsNodeSubject(p, a.nsp, a.n.uid))
	return a.cluster.Memory.Close()
}

// Offset is the newest stream message this node has read ("" while the
// stream is not set up: a session based on it cannot be recovered).
func (a *jsAdapter) Offset() string {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	if a.n.stream == nil {
		return ""
	}
	return jsOffset(a.n.lastSeq)
}

// bucket returns the session bucket, created on first use with the
// recovery window as its age limit. It holds no lock across the requests
// (the live reader takes n.mu for every message): one caller opens the
// bucket, concurrent ones wait for its result, or their own ctx.
func (n *JetStreamNode) bucket(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	n.kvMu.Lock()
	if n.sessions != nil {
		kv := n.sessions
		n.kvMu.Unlock()
		return kv, nil
	}
	if o := n.kvOpen; o != nil {
		n.kvMu.Unlock()
		select {
		case <-o.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n.kvMu.Lock()
		kv := n.sessions
		n.kvMu.Unlock()
		if kv == nil {
			return nil, o.err
		}
		return kv, nil
	}
	o := &kvOpening{done: make(chan struct{})}
	n.kvOpen = o
	n.kvMu.Unlock()

	kv, err := n.openBucket(ctx, window)
	n.kvMu.Lock()
	if err == nil {
		n.sessions = kv
	}
	o.err, n.kvOpen = err, nil
	close(o.done)
	n.kvMu.Unlock()
	return kv, err
}

// openBucket opens the session bucket, creating it when missing.
func (n *JetStreamNode) openBucket(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	name := n.jcfg.Stream + "_sessions"
	kv, err := n.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = n.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, TTL: window, Replicas: n.jcfg.Replicas, Storage: jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = n.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	return kv, nil
}

// SaveSession stores the session in the bucket for the recovery window
// (until s.Expires when set).
func (a *jsAdapter) SaveSession(s *Session) {
	if a.window <= 0 || a.n.current() == nil {
		return // without a stream there was no offset to recover from
	}
	expires := s.Expires
	if expires.IsZero() {
		expires = time.Now().Add(a.window)
	}
	if !time.Now().Before(expires) {
		return
	}
	b, err := encodeMsgpack(map[string]any{"sid": s.ID, "pid": s.PID, "rooms": s.Rooms, "data": plain1(s.Data),
		"base": s.Base, "expires": expires.UnixMilli()})
	if err != nil {
		a.n.fail("publish", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	defer cancel()
	kv, err := a.n.bucket(ctx, a.window)
	if err == nil {
		_, err = kv.Put(ctx, sessionKey(s.PID), b)
	}
	if err != nil {
		a.n.fail("publish", err)
	}
}

// sessionKey renders a private id as a bucket key (any string a client
// sends becomes valid key characters).
func sessionKey(pid string) string { return "s" + token(pid) }

// Why a recovery is refused without putting the session back: the client
// cannot catch up from its offset, now or later.
var (
	errOffsetTrimmed = errors.New("jetstream: recovery offset past the stream's retention")
	errOffsetUnknown = errors.New("jetstream: recovery offset after the stream's end")
)

// RestoreSession takes the session from the bucket (once: a concurrent
// restore of the same session loses), reads what it missed from the
// stream, then rejoins the socket to its rooms once the live reader has
// not passed the end of what was read: what comes later is delivered live
// (a message both read and delivered live is dropped by the receiver by
// offset). An offset the stream no longer holds (past its retention) gets
// a fresh session. A read that fails (the stream does not answer, a
// timeout on a loaded machine) puts the session back and refuses the
// recovery: nothing is attached, so it never yields a recovered socket
// that silently missed messages.
func (a *jsAdapter) RestoreSession(pid, offset string, attach func(*Session)) *Session {
	if a.window <= 0 || len(pid) > 256 {
		return nil
	}
	stream := a.n.current()
	if stream == nil {
		return nil // not set up: the stream cannot be read
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	defer cancel()
	kv, err := a.n.bucket(ctx, a.window)
	if err != nil {
		a.n.fail("request", err)
		return nil
	}
	key := sessionKey(pid)
	e, err := kv.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			a.n.fail("request", err)
		}
		return nil
	}
	if err := kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// Not taken by another restore: the bucket did not answer.
			a.n.fail("request", fmt.Errorf("jetstream: session: %w", err))
		}
		return nil // else taken by another restore
	}
	var v map[string]any
	if err := decodeMsgpack(e.Value(), &v); err != nil {
		a.n.fail("decode", fmt.Errorf("session: %w", err))
		return nil
	}
	s := &Session{PID: pid, Rooms: strings_(v["rooms"]), Data: v["data"]}
	if ms, ok := toInt(v["expires"]); ok {
		s.Expires = time.UnixMilli(ms)
		if !time.Now().Before(s.Expires) {
			return nil
		}
	}
	s.ID, _ = v["sid"].(string)
	s.Base, _ = v["base"].(string)
	if offset == "" {
		offset = s.Base
	}
	seq, ok := jsSeq(offset)
	if !ok {
		return nil
	}
	rooms := make(map[string]struct{}, len(s.Rooms))
	for _, r := range s.Rooms {
		rooms[r] = struct{}{}
	}
	read := 0
	for i := 0; i < restoreMaxRanges; i++ {
		end, err := a.readMissed(stream, s, rooms, seq, &read)
		if errors.Is(err, errOffsetTrimmed) || errors.Is(err, errOffsetUnknown) {
			return nil
		}
		if err != nil {
			a.n.fail("request", err)
			break
		}
		seq = end
		a.n.mu.Lock()
		if a.n.lastSeq <= end {
			// The live reader delivers everything after end to the
			// rejoined socket: it takes n.mu before each message.
			attach(s)
			a.Memory.Join(s.ID, s.Rooms...)
			a.n.mu.Unlock()
			return s
		}
		a.n.mu.Unlock()
	}
	s.Missed = nil
	a.SaveSession(s) // unknown for now, not gone
	return nil
}

// readMissed appends to s.Missed what the stream holds after seq for the
// session's rooms, up to the stream's end when it starts, and returns that
// end. It fails with errOffsetTrimmed when the stream no longer holds every
// message after seq (before the read or, trimmed meanwhile, after it), and
// with an error when any part of the range cannot be read. read counts the
// messages read over the calls, bounded by restoreMaxRanges*1000.
//
// Each message is one request, "the namespace's first message from here
// on", answered by the stream's leader: no consumer, so nothing to place
// on a server that may have died (a NATS 2.9 cluster still assigns new
// consumers to a peer that is down, and they time out).
func (a *jsAdapter) readMissed(stream jetstream.Stream, s *Session, rooms map[string]struct{}, seq uint64, read *int) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	info, err := stream.Info(ctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("jetstream: recovery: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	switch {
	case seq > last:
		return 0, errOffsetUnknown
	case seq+1 < first:
		return 0, errOffsetTrimmed
	}
	subject := a.n.subject + "." + token(a.nsp)
	for from := seq + 1; from <= last; {
		if *read >= restoreMaxRanges*1000 {
			return 0, fmt.Errorf("jetstream: recovery: more than %d messages to read", restoreMaxRanges*1000)
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
		m, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // none after from
		}
		if err != nil {
			return 0, fmt.Errorf("jetstream: recovery: %w", err)
		}
		if m.Sequence < from {
			return 0, fmt.Errorf("jetstream: recovery: asked for message %d or later, got %d", from, m.Sequence)
		}
		if m.Sequence > last {
			break // delivered live after the attach
		}
		*read++
		from = m.Sequence + 1
		cm, err := decodeClusterMsg(m.Data)
		if err != nil {
			a.n.fail("decode", err)
			continue // skipped, as the live reader skipped it
		}
		if cm.Type != cmBroadcast {
			continue
		}
		if _, withAck := cm.Data["requestId"]; withAck {
			continue
		}
		msg, ok := messageOf(cm.Data["packet"], a.nsp)
		opts := fromWire(cm.Data["opts"])
		if ok && recoverable(msg, opts) && matches(rooms, opts) {
			msg.Offset = jsOffset(m.Sequence)
			s.Missed = append(s.Missed, msg)
		}
	}
	// A message trimmed after the info above and before it was read would
	// be skipped silently: the stream must still begin at seq+1 or before.
	ctx, cancel = context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	info, err = stream.Info(ctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("jetstream: recovery: %w", err)
	}
	if seq+1 < info.State.FirstSeq {
		return 0, errOffsetTrimmed
	}
	return last, nil
}
