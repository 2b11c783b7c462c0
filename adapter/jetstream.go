package adapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of JetStreamConfig.
const (
	DefaultJetStreamMaxAge  = 24 * time.Hour
	DefaultJetStreamMaxMsgs = 100_000
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
	// 0: 24 h and 100,000 messages.
	MaxAge  time.Duration
	MaxMsgs int64
	// Replicas of the stream and the session bucket (on a NATS cluster).
	// 0: 1.
	Replicas int
}

// JetStreamNode is one process's connection to the NATS JetStream
// backplane: broadcasts and room operations go through one stream, which
// every node reads in order with an ordered consumer, so a node that was
// cut off resumes after the last message it read, and every socket gets a
// broadcast's stream sequence as its recovery offset; requests and answers
// go over core NATS. Sessions for connection state recovery live in a
// JetStream key-value bucket, so a client can recover on any node.
type JetStreamNode struct {
	*natsNode
	jcfg    JetStreamConfig
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string // the stream's subjects: subject + "." + namespace token

	mu       sync.Mutex
	lastSeq  uint64 // newest stream message read
	sessions jetstream.KeyValue
	window   time.Duration
}

// NewJetStreamNode connects, creates or updates the stream, and starts
// reading it from its end.
func NewJetStreamNode(cfg JetStreamConfig) (*JetStreamNode, error) {
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
	fail := func(err error) (*JetStreamNode, error) {
		base.close()
		return nil, fmt.Errorf("adapter: jetstream: %w", err)
	}
	if n.js, err = jetstream.New(base.nc); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(n.ctx, cfg.RequestTimeout)
	defer cancel()
	n.stream, err = n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{n.subject + ".>"},
		MaxAge: cfg.MaxAge, MaxMsgs: cfg.MaxMsgs, Replicas: cfg.Replicas,
		Discard: jetstream.DiscardOld, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fail(err)
	}
	info, err := n.stream.Info(ctx)
	if err != nil {
		return fail(err)
	}
	n.lastSeq = info.State.LastSeq
	cons, err := n.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{n.subject + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    n.lastSeq + 1,
	})
	if err != nil {
		return fail(err)
	}
	// The ordered consumer re-creates itself after an outage from the
	// sequence after the last one it delivered.
	it, err := cons.Messages()
	if err != nil {
		return fail(err)
	}
	n.wg.Add(1)
	go n.read(it)
	return n, nil
}

func (n *JetStreamNode) read(it jetstream.MessagesContext) {
	defer n.wg.Done()
	go func() {
		<-n.ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			n.fail("subscribe", err)
			if !sleepCtx(n.ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		n.cfg.Stats.received()
		md, err := m.Metadata()
		if err != nil {
			n.fail("decode", err)
			continue
		}
		seq := md.Sequence.Stream
		n.mu.Lock()
		n.lastSeq = max(n.lastSeq, seq)
		n.mu.Unlock()
		nsp, ok := untoken(strings.TrimPrefix(m.Subject(), n.subject+"."))
		if !ok {
			n.fail("decode", fmt.Errorf("%w: subject %q", ErrUndecodable, m.Subject()))
			continue
		}
		n.routes.deliver(nsp, m.Data(), jsOffset(seq))
	}
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

// Close says goodbye and stops reading.
func (n *JetStreamNode) Close() error { return n.close() }

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
func (n *JetStreamNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.queue)
	c.stats = n.cfg.Stats
	c.logOffsets = true
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

// errNATSDown refuses a publish to the stream while the connection is
// down: waiting for the acknowledgement would hold every later publish
// (and the local delivery of broadcasts) for the request timeout.
// errNATSDown: NATS is disconnected (the client is reconnecting).
var errNATSDown = fmt.Errorf("nats: %w", ErrBackplaneDown)

func (l *jsLink) publish(ctx context.Context, m clusterMsg) (string, error) {
	if !l.n.nc.IsConnected() {
		return "", errNATSDown
	}
	return jsPublish(ctx, l.n.js, l.n.nc, l.prefix, l.n.subject, m)
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

// Offset is the newest stream message this node has read.
func (a *jsAdapter) Offset() string {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	return jsOffset(a.n.lastSeq)
}

// bucket returns the session bucket, created on first use with the
// recovery window as its age limit.
func (n *JetStreamNode) bucket(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sessions != nil {
		return n.sessions, nil
	}
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
	n.sessions = kv
	return kv, nil
}

// SaveSession stores the session in the bucket for the recovery window
// (until s.Expires when set).
func (a *jsAdapter) SaveSession(s *Session) {
	if a.window <= 0 {
		return
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

// RestoreSession takes the session from the bucket (once: a concurrent
// restore of the same session loses), rejoins the socket to its rooms,
// then reads what it missed from the stream; a message delivered live
// meanwhile is also in that range, and the receiver drops the duplicate
// by offset.
func (a *jsAdapter) RestoreSession(pid, offset string, attach func(*Session)) *Session {
	if a.window <= 0 || len(pid) > 256 {
		return nil
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
		return nil // taken by another restore
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
	info, err := a.n.stream.Info(ctx)
	if err != nil {
		a.n.fail("request", err)
		return nil
	}
	if seq > info.State.LastSeq || (seq+1 < info.State.FirstSeq) {
		return nil // unknown, or trimmed away: no exact catch-up
	}
	attach(s)
	a.Memory.Join(s.ID, s.Rooms...)
	rooms := make(map[string]struct{}, len(s.Rooms))
	for _, r := range s.Rooms {
		rooms[r] = struct{}{}
	}
	// Everything up to the stream's end now: what comes later is
	// delivered live to the rejoined socket.
	info, err = a.n.stream.Info(ctx)
	if err != nil || info.State.LastSeq <= seq {
		return s
	}
	last := info.State.LastSeq
	cons, err := a.n.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{a.n.subject + "." + token(a.nsp)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    seq + 1,
	})
	if err != nil {
		a.n.fail("request", err)
		return s
	}
	for read := 0; read < restoreMaxRanges*1000; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			a.n.fail("request", err)
			break
		}
		got := 0
		done := false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > last {
				done = true
				continue
			}
			if md.NumPending == 0 || md.Sequence.Stream == last {
				done = true
			}
			cm, err := decodeClusterMsg(m.Data())
			if err != nil || cm.Type != cmBroadcast {
				continue
			}
			if _, withAck := cm.Data["requestId"]; withAck {
				continue
			}
			msg, ok := messageOf(cm.Data["packet"], a.nsp)
			opts := fromWire(cm.Data["opts"])
			if ok && recoverable(msg, opts) && matches(rooms, opts) {
				msg.Offset = jsOffset(md.Sequence.Stream)
				s.Missed = append(s.Missed, msg)
			}
		}
		read += got
		if batch.Error() != nil || got == 0 || done {
			break
		}
	}
	return s
}
