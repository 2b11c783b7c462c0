package adapter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// Defaults of KafkaConfig.
const (
	DefaultKafkaPrefix    = "roomcast"
	DefaultKafkaRetention = 24 * time.Hour
	DefaultKafkaHeartbeat = 5 * time.Second
	// kafkaMaxSessions and kafkaMaxSessionBytes bound the recovery
	// sessions a node keeps from the sessions topic (every node keeps them
	// all, so a client can recover on any node); past them a saved session
	// is skipped and counted (op "subscribe").
	kafkaMaxSessions     = 1 << 20
	kafkaMaxSessionBytes = 256 << 20
	kafkaMaxTopic        = 249 // longest topic name Kafka accepts
	kafkaMaxPID          = 256
)

// KafkaConfig configures a Kafka backplane node.
type KafkaConfig struct {
	// Brokers are the seed brokers (host:port). Required.
	Brokers []string
	// Prefix starts every topic name: <prefix>.<namespace token> (a
	// namespace's broadcasts and room operations), <prefix>._control
	// (requests, answers, heartbeats) and <prefix>._sessions (recovery
	// sessions). "": "roomcast".
	Prefix string
	// Retention is how long the topics the node creates keep records
	// (retention.ms): a node cut off for longer, and a client away for
	// longer, cannot catch up. 0: 24 h. Topics that exist are not changed.
	Retention time.Duration
	// RequestTimeout bounds cross-node requests, each produce and each
	// read of a recovery. 0: 5 s.
	RequestTimeout time.Duration
	// Heartbeat is how often the node tells the others it lives; a node not
	// heard from for two heartbeats and a second no longer counts. 0: 5 s.
	Heartbeat time.Duration
	// Logger: nil means none.
	Logger *zap.Logger
	// OnError observes backplane errors (for metrics); op is "publish",
	// "subscribe", "request" or "decode". Optional.
	OnError func(op string, err error)
	// Stats observes the traffic (for metrics). Optional.
	Stats *Stats
	// Options are added to the Kafka client's options (TLS, SASL).
	Options []kgo.Opt
}

// KafkaNode is one process's connection to the Kafka backplane.
//
// Each namespace has a topic of one partition, so its broadcasts and room
// operations have one total order, read by every node from where it
// started (the end of the topic when the namespace's adapter was made):
// the node keeps its position itself, and after an outage the client
// fetches again from that position, so nothing published meanwhile is
// skipped while the topic retains it. Every node, the publishing one
// included, delivers a broadcast when it reads it back, with its Kafka
// offset as the recovery offset ("0-<offset after the record>"), so a
// client can recover on any node: the sessions of disconnected sockets go
// through the sessions topic, which every node reads into memory, and a
// restore reads what the client missed from the namespace's topic.
//
// Requests (fetch sockets, server-side emits, broadcasts with acks), their
// answers and heartbeats go through one control topic that every node
// reads from its end; an answer carries the asking node's uid as its
// record key, and the other nodes skip it without decoding it. One topic
// rather than one per node: nodes come and go under new uids, and topics
// made per process would be left behind in the cluster.
type KafkaNode struct {
	cfg    KafkaConfig
	log    *zap.Logger
	uid    string
	cl     *kgo.Client
	adm    *kadm.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errLog rateLog
	opts   []kgo.Opt // of every client: seeds, backoff, the caller's

	routes    *routes
	pub       *jobs
	control   string
	sessTopic string

	down      atomic.Bool // a produce, heartbeat or fetch, or the dials of every broker, failed and none succeeded since
	gapLogged atomic.Bool // onGap has logged

	answerWanted atomic.Bool // an initial heartbeat awaits an answer
	answering    atomic.Bool // a goroutine produces answers

	dialMu sync.Mutex
	dials  map[string]bool // broker address: its last dial worked

	followMu sync.Mutex // serializes adding a namespace topic with kafkaAdapter.Close
	mu       sync.Mutex
	closed   bool              // Close began: no goroutine joins wg, no topic is added
	topics   map[string]string // namespace topics read, to their namespace
	pos      map[string]int64  // namespace topic: the offset the reader hands out next
	seen     map[string]time.Time
	sessions map[string]*kafkaSession // by private id
	sessSize int
	sessPos  int64         // the sessions topic's offset read next
	sessRead chan struct{} // closed (and replaced) when sessPos moves
}

// kafkaSession is a saved session as the sessions topic holds it: the
// encoded record, its end, and the claim that took it (the first claim
// record after it, in the topic's order, wins).
type kafkaSession struct {
	raw     []byte
	pid     string
	expires time.Time
	claim   string
}

// errKafkaDown refuses a publish while the node knows Kafka is away.
var errKafkaDown = fmt.Errorf("kafka: %w", ErrBackplaneDown)

// errKafkaNotFollowed refuses a record of a namespace's topic that the node
// does not read yet: it would not read it back, so its own sockets would
// not get it.
var errKafkaNotFollowed = fmt.Errorf("kafka: namespace topic not read yet: %w", ErrBackplaneDown)

// NewKafkaNode connects to Kafka, creates the control and sessions topics
// when missing, and starts the node's loops. Kafka must answer within the
// request timeout.
func NewKafkaNode(cfg KafkaConfig) (*KafkaNode, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("adapter: KafkaConfig.Brokers is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultKafkaPrefix
	}
	if !kafkaTopicName(cfg.Prefix) || len(cfg.Prefix) > 200 {
		return nil, fmt.Errorf("adapter: Kafka topic prefix %q: want 1 to 200 of a-z A-Z 0-9 . _ -", cfg.Prefix)
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultKafkaRetention
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRedisRequestTimeout
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultKafkaHeartbeat
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &KafkaNode{cfg: cfg, log: log.Named("kafka"), uid: randomID(8), ctx: ctx, cancel: cancel,
		control: kafkaControlTopic(cfg.Prefix), sessTopic: cfg.Prefix + "._sessions",
		topics: make(map[string]string), pos: make(map[string]int64), seen: make(map[string]time.Time),
		sessions: make(map[string]*kafkaSession), sessRead: make(chan struct{}), dials: make(map[string]bool)}
	n.routes = newRoutes("", n.fail)
	n.opts = append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("roomcast-" + n.uid),
		// Reconnect with backoff: 100 ms doubling to 2 s, plus jitter.
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(100*time.Millisecond<<min(tries, 5), 2*time.Second) + time.Duration(tries%7)*10*time.Millisecond
		}),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// The ordered publisher waits for each record: lingering (10 ms
		// by default) would only add to every broadcast's latency.
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(cfg.RequestTimeout),
		kgo.ProduceRequestTimeout(cfg.RequestTimeout),
		kgo.FetchMaxWait(time.Second), // bounds how long Close waits for a fetch
	}, cfg.Options...)
	n.opts = slices.Clip(n.opts) // every client appends its own options

	fail := func(err error) (*KafkaNode, error) {
		cancel()
		if n.cl != nil {
			n.cl.Close()
		}
		return nil, fmt.Errorf("adapter: kafka: %w", err)
	}
	// The control topic is read from its end, the sessions topic from its
	// start (the sessions of the retention window).
	boot, err := kgo.NewClient(n.opts...)
	if err != nil {
		return fail(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	adm := kadm.NewClient(boot)
	err = ensureKafkaTopic(bctx, adm, n.control, cfg.Retention, false)
	if err == nil {
		err = ensureKafkaTopic(bctx, adm, n.sessTopic, cfg.Retention, true)
	}
	var end int64
	if err == nil {
		end, err = kafkaEnd(bctx, adm, n.control)
	}
	bcancel()
	boot.Close()
	if err != nil {
		return fail(err)
	}
	n.cl, err = kgo.NewClient(append(n.opts,
		kgo.WithHooks(kafkaHooks{n}),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			n.control:   {0: kgo.NewOffset().At(end)},
			n.sessTopic: {0: kgo.NewOffset().AtStart()},
		}))...)
	if err != nil {
		return fail(err)
	}
	n.adm = kadm.NewClient(n.cl)
	n.pub = newJobs(n.fail)
	n.wg.Add(2)
	go n.read()
	go n.beat()
	return n, nil
}

// kafkaTopicName tells whether s holds only the characters of a topic name.
func kafkaTopicName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ensureKafkaTopic creates topic (one partition, the broker's replication
// factor, retention) unless it exists. The sessions topic is compacted as
// well: only a private id's newest record matters.
func ensureKafkaTopic(ctx context.Context, adm *kadm.Client, topic string, retention time.Duration, compact bool) error {
	ms := strconv.FormatInt(retention.Milliseconds(), 10)
	configs := map[string]*string{"retention.ms": &ms}
	if compact {
		policy := "compact,delete"
		configs["cleanup.policy"] = &policy
	}
	_, err := adm.CreateTopic(ctx, 1, -1, configs, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func kafkaEnd(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	return kafkaListed(adm.ListEndOffsets(ctx, topic))
}

// kafkaListed reads partition 0's offset from a list of offsets.
func kafkaListed(l kadm.ListedOffsets, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	for t := range l {
		o, ok := l.Lookup(t, 0)
		if !ok {
			break
		}
		return o.Offset, o.Err
	}
	return 0, errors.New("no offset listed for partition 0")
}

// kafkaHooks watches the client's connections: a dial that works means
// Kafka is back when the node thought it away. A failed dial means Kafka
// is away (publishes are refused at once) only when the last dial of
// every broker address the client dialed failed: with several brokers,
// one of them away (or a dead seed address) does not stop the others
// from taking records. Otherwise it is only reported; a produce (the
// heartbeat's at the latest) or a fetch that fails still sets down.
type kafkaHooks struct{ n *KafkaNode }

func (h kafkaHooks) OnBrokerConnect(m kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	all := h.n.dialed(net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))), err == nil)
	if err != nil {
		if h.n.ctx.Err() == nil {
			if all {
				h.n.setDown("subscribe", err)
			} else {
				h.n.fail("subscribe", err)
			}
		}
		return
	}
	h.n.setUp()
}

// maxKafkaDialed bounds the broker addresses dialed records (the
// addresses come from the cluster's metadata).
const maxKafkaDialed = 1024

// dialed records how the last dial of addr went and tells whether the
// last dial of every address recorded failed.
func (n *KafkaNode) dialed(addr string, ok bool) (allFailed bool) {
	n.dialMu.Lock()
	defer n.dialMu.Unlock()
	if _, known := n.dials[addr]; known || len(n.dials) < maxKafkaDialed {
		n.dials[addr] = ok
	}
	for _, ok := range n.dials {
		if ok {
			return false
		}
	}
	return !ok
}

// UID is the node's id on the backplane.
func (n *KafkaNode) UID() string { return n.uid }

func (n *KafkaNode) fail(op string, err error) {
	if n.cfg.OnError != nil {
		n.cfg.OnError(op, err)
	}
	n.errLog.log(n.log, "kafka error", zap.String("op", op), zap.Error(err))
}

func (n *KafkaNode) setDown(op string, err error) {
	n.down.Store(true)
	n.fail(op, err)
}

func (n *KafkaNode) setUp() {
	if n.down.CompareAndSwap(true, false) && n.ctx.Err() == nil {
		n.log.Info("kafka connection restored")
		// The others count this node at once.
		n.goTracked(func() { n.heartbeat(cmInitialHeartbeat) })
	}
}

// goTracked runs f in a goroutine tracked by wg, unless Close began (then
// not at all): the closed check and wg.Add share n.mu with Close setting
// closed, so no wg.Add comes after Close's wg.Wait started. Callers must
// not hold n.mu.
func (n *KafkaNode) goTracked(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// produced notes the outcome of a produce: an error that is not the
// broker's answer (a timeout, a lost connection) means Kafka is away.
func (n *KafkaNode) produced(err error) {
	var ke *kerr.Error
	switch {
	case err == nil:
		n.setUp()
	case !errors.As(err, &ke) && n.ctx.Err() == nil:
		n.down.Store(true)
	}
}

// produce writes one record to partition 0 of its topic and returns the
// offset after it.
func (n *KafkaNode) produce(ctx context.Context, r *kgo.Record) (int64, error) {
	next, err := kafkaProduce(ctx, n.cl, r)
	n.produced(err)
	return next, err
}

// kafkaProduce writes r to partition 0 and waits for Kafka's answer, or
// for ctx: while the client cannot reach a broker it keeps records
// buffered past their timeout. A record given up on this way has a done
// context, so the client fails it rather than write it once it can (unless
// it was in flight when the connection broke: then it may be in the topic
// after all, as with any Kafka producer that gives up).
func kafkaProduce(ctx context.Context, cl *kgo.Client, r *kgo.Record) (int64, error) {
	r.Partition = 0
	type result struct {
		r   *kgo.Record
		err error
	}
	done := make(chan result, 1)
	cl.Produce(ctx, r, func(r *kgo.Record, err error) { done <- result{r, err} })
	select {
	case res := <-done:
		if res.err != nil {
			return 0, res.err
		}
		return res.r.Offset + 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// nspTopic is the topic of a namespace: prefix.<token>, or, when that is
// too long for Kafka, prefix.h<sha-256 of the name>.
func (n *KafkaNode) nspTopic(nsp string) string {
	return kafkaNspTopic(n.cfg.Prefix, nsp)
}

func kafkaControlTopic(prefix string) string { return prefix + "._control" }

func kafkaNspTopic(prefix, nsp string) string {
	if t := prefix + "." + token(nsp); len(t) <= kafkaMaxTopic {
		return t
	}
	sum := sha256.Sum256([]byte(nsp))
	return prefix + ".h" + hex.EncodeToString(sum[:])
}

// kafkaOffset renders the offset after a record as a recovery offset
// ("0-<offset>": partition 0, which OffsetAfter orders); kafkaNext reads it.
func kafkaOffset(next int64) string { return "0-" + strconv.FormatInt(next, 10) }

func kafkaNext(offset string) (int64, bool) {
	s, ok := strings.CutPrefix(offset, "0-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// queue hands a publish to the ordered publisher, or refuses it with
// ErrBackplaneDown while Kafka is known to be away.
func (n *KafkaNode) queue(job func()) error {
	if n.down.Load() {
		n.fail("publish", errKafkaDown)
		return errKafkaDown
	}
	return n.pub.queue(job)
}

// read hands every record to its handler, in each topic's order.
func (n *KafkaNode) read() {
	defer n.wg.Done()
	backoff := time.Duration(0)
	for {
		fs := n.cl.PollFetches(n.ctx)
		if n.ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		failed := false
		fs.EachError(func(t string, _ int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			n.setDown("subscribe", fmt.Errorf("fetch %s: %w", t, err))
		})
		got := false
		fs.EachRecord(func(r *kgo.Record) {
			got = true
			n.onRecord(r)
		})
		if failed && !got {
			backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
			if !sleepCtx(n.ctx, backoff) {
				return
			}
		} else if got {
			backoff = 0
		}
	}
}

func (n *KafkaNode) onRecord(r *kgo.Record) {
	n.cfg.Stats.received()
	switch r.Topic {
	case n.control:
		n.onControl(r)
	case n.sessTopic:
		n.onSession(r)
	default:
		n.mu.Lock()
		nsp, ok := n.topics[r.Topic]
		pos := n.pos[r.Topic]
		if ok {
			// Before delivery: a restore that sees this position knows
			// the record is delivered to a socket it rejoins (see
			// RestoreSession).
			n.pos[r.Topic] = r.Offset + 1
		}
		n.mu.Unlock()
		if ok && r.Offset != pos {
			n.onGap(r.Topic, pos, r.Offset)
		}
		if ok {
			n.routes.deliver(nsp, r.Value, kafkaOffset(r.Offset+1))
		}
	}
}

// onGap reports a record of a namespace's topic read at another offset
// than the reader's position. Past it, the records between were lost to
// this node's sockets: the client fell below the topic's start (the node
// was cut off for longer than the retention) and resumed at the start, or
// the broker lost data. Counted each time (op "subscribe"), logged as an
// error once per node.
func (n *KafkaNode) onGap(topic string, pos, offset int64) {
	var err error
	if offset > pos {
		err = fmt.Errorf("topic %s read at offset %d, %d expected: %d records lost to this node's sockets", topic, offset, pos, offset-pos)
	} else {
		err = fmt.Errorf("topic %s read at offset %d, %d expected: records read again", topic, offset, pos)
	}
	if n.cfg.OnError != nil {
		n.cfg.OnError("subscribe", err)
	}
	if n.gapLogged.CompareAndSwap(false, true) {
		n.log.Error("kafka records skipped or repeated on a namespace topic (logged once)", zap.Error(err))
	}
}

// onControl handles a request, an answer or a heartbeat. An answer to
// another node (its uid as the key) is skipped undecoded.
func (n *KafkaNode) onControl(r *kgo.Record) {
	if len(r.Key) > 0 && string(r.Key) != n.uid {
		return
	}
	m, err := decodeClusterMsg(r.Value)
	if err != nil {
		n.fail("decode", fmt.Errorf("control record: %w", err))
		return
	}
	if m.UID == n.uid {
		return
	}
	if m.Nsp == "" {
		switch m.Type {
		case cmInitialHeartbeat, cmHeartbeat, cmAdapterClose:
			n.onHeartbeat(m)
		}
		return
	}
	if c := n.routes.get(m.Nsp); c != nil {
		c.onMessage(m, "")
	}
}

// heartbeat publishes the node's presence (typ cmInitialHeartbeat asks
// the others to answer at once, cmAdapterClose says goodbye).
func (n *KafkaNode) heartbeat(typ int) error {
	b, err := encodeClusterMsg(clusterMsg{UID: n.uid, Type: typ})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
	defer cancel()
	_, err = n.produce(ctx, &kgo.Record{Topic: n.control, Value: b})
	if err != nil && n.ctx.Err() == nil {
		n.fail("publish", fmt.Errorf("heartbeat: %w", err))
	}
	return err
}

// beat sends heartbeats, forgets silent nodes and expired sessions; while
// Kafka is away it probes with backoff (100 ms doubling to 2 s).
func (n *KafkaNode) beat() {
	defer n.wg.Done()
	n.heartbeat(cmInitialHeartbeat)
	next := time.Now().Add(n.cfg.Heartbeat)
	backoff := time.Duration(0)
	for {
		wait := time.Until(next)
		if n.down.Load() {
			backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
			wait = min(wait, backoff)
		} else {
			backoff = 0
		}
		if !sleepCtx(n.ctx, wait) {
			return
		}
		if !n.down.Load() && time.Now().Before(next) {
			continue
		}
		if n.heartbeat(cmHeartbeat) == nil {
			next = time.Now().Add(n.cfg.Heartbeat)
		}
		now := time.Now()
		n.mu.Lock()
		for uid, at := range n.seen {
			if now.Sub(at) > n.liveFor() {
				delete(n.seen, uid)
			}
		}
		for pid, s := range n.sessions {
			if !now.Before(s.expires) {
				n.dropSession(pid, s)
			}
		}
		n.mu.Unlock()
	}
}

func (n *KafkaNode) liveFor() time.Duration { return 2*n.cfg.Heartbeat + time.Second }

func (n *KafkaNode) onHeartbeat(m clusterMsg) {
	if m.UID == "" || len(m.UID) > 64 {
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
		n.answerHeartbeat()
	}
}

// answerHeartbeat answers an initial heartbeat with a heartbeat, in the
// background (a produce may take the request timeout). Answers coalesce:
// at most one goroutine, tracked in wg, produces them, and one heartbeat
// answers every initial heartbeat read before it started, so a flood of
// them costs one goroutine and one record at a time. Called by the reader
// (a wg goroutine: wg.Add cannot race Close's wg.Wait).
func (n *KafkaNode) answerHeartbeat() {
	n.answerWanted.Store(true)
	if !n.answering.CompareAndSwap(false, true) {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			for n.ctx.Err() == nil && n.answerWanted.Swap(false) {
				n.heartbeat(cmHeartbeat)
			}
			n.answering.Store(false)
			// An initial heartbeat read between the last Swap and the
			// Store above found answering set: answer it here.
			if n.ctx.Err() != nil || !n.answerWanted.Load() || !n.answering.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// serverCount is the number of live nodes, this one included.
func (n *KafkaNode) serverCount() int {
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

// Close says goodbye to the other nodes and stops. Publishes still queued
// get the request timeout to go out.
func (n *KafkaNode) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	stopped := make(chan struct{})
	go func() {
		n.pub.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(n.cfg.RequestTimeout):
	}
	if !n.down.Load() {
		n.heartbeat(cmAdapterClose)
	}
	n.cancel()
	n.cl.Close() // fails what is still buffered: the publisher ends
	<-stopped
	n.wg.Wait()
	return nil
}

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
// It creates the namespace's topic when missing and reads it from its end.
func (n *KafkaNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.queue)
	c.stats = n.cfg.Stats
	c.logOffsets = true
	topic := n.nspTopic(nsp)
	c.link = &kafkaLink{n: n, topic: topic}
	n.routes.add(nsp, c)
	a := &kafkaAdapter{cluster: c, n: n, topic: topic, window: window}
	if err := n.follow(topic, c); err != nil {
		// Kafka is away, or the topic is not ready yet (a new topic's
		// leader is still being elected, a timeout): keep trying in the
		// background. Until the topic is read, kafkaLink.publish refuses
		// broadcasts with ErrBackplaneDown, so they are delivered here
		// only (a record this node would not read back would reach none
		// of its sockets).
		n.fail("subscribe", err)
		n.goTracked(func() {
			backoff := time.Duration(0)
			for n.routes.get(nsp) == c {
				backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
				if !sleepCtx(n.ctx, backoff) {
					return
				}
				if err := n.follow(topic, c); err == nil || errors.Is(err, errKafkaUnfollowed) {
					return
				}
			}
		})
	}
	return a
}

// errKafkaUnfollowed ends a follow whose adapter or node closed meanwhile.
var errKafkaUnfollowed = errors.New("kafka: adapter closed")

// follow creates a namespace's topic when missing and reads it from its
// current end, for cluster c. The topic is added, in one critical section
// of followMu and n.mu, only while c is still the namespace's route and
// the node is not closing: kafkaAdapter.Close and KafkaNode.Close take
// the same locks, so a topic is never read after its adapter or node
// closed.
func (n *KafkaNode) follow(topic string, c *cluster) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
	defer cancel()
	if err := ensureKafkaTopic(ctx, n.adm, topic, n.cfg.Retention, false); err != nil {
		return err
	}
	end, err := kafkaEnd(ctx, n.adm, topic)
	if err != nil {
		return err
	}
	n.followMu.Lock()
	defer n.followMu.Unlock()
	n.mu.Lock()
	if n.closed || n.routes.get(c.nsp) != c {
		n.mu.Unlock()
		return errKafkaUnfollowed
	}
	n.topics[topic] = c.nsp
	n.pos[topic] = end
	n.mu.Unlock()
	n.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(end)}})
	return nil
}

// following tells whether the node reads a namespace's topic.
func (n *KafkaNode) following(topic string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.topics[topic]
	return ok
}

// kafkaLink: broadcasts and room operations go into the namespace's
// topic, requests and answers into the control topic.
type kafkaLink struct {
	n     *KafkaNode
	topic string
}

func (l *kafkaLink) publish(ctx context.Context, m clusterMsg) (string, error) {
	if l.n.down.Load() {
		return "", errKafkaDown
	}
	if m.Type == cmBroadcast && !ephemeral(m) && !l.n.following(l.topic) {
		// This node delivers its broadcasts when it reads them back
		// (see cluster.Broadcast): refused, they are delivered here at
		// once. Room operations, applied here at once anyway, still go.
		return "", errKafkaNotFollowed
	}
	return kafkaPublish(ctx, l.n.produce, l.n.control, l.topic, m)
}

// kafkaPublish writes m into the namespace's topic, or into the control
// topic when it is ephemeral, and returns its recovery offset ("" for the
// control topic).
func kafkaPublish(ctx context.Context, produce func(context.Context, *kgo.Record) (int64, error), control, topic string, m clusterMsg) (string, error) {
	b, err := encodeClusterMsg(m)
	if err != nil {
		return "", err
	}
	if ephemeral(m) {
		_, err := produce(ctx, &kgo.Record{Topic: control, Value: b})
		return "", err
	}
	next, err := produce(ctx, &kgo.Record{Topic: topic, Value: b})
	if err != nil {
		return "", err
	}
	return kafkaOffset(next), nil
}

func (l *kafkaLink) respond(ctx context.Context, uid string, m clusterMsg) error {
	if l.n.down.Load() {
		return errKafkaDown
	}
	b, err := encodeClusterMsg(m)
	if err != nil {
		return err
	}
	_, err = l.n.produce(ctx, &kgo.Record{Topic: l.n.control, Key: []byte(uid), Value: b})
	return err
}

func (l *kafkaLink) serverCount(context.Context) int { return l.n.serverCount() }

// kafkaAdapter keeps recovery sessions in the sessions topic and replays
// missed packets from the namespace's topic.
type kafkaAdapter struct {
	*cluster
	n      *KafkaNode
	topic  string
	window time.Duration
}

func (a *kafkaAdapter) Close() error {
	// Under followMu: a follow of this adapter either added the topic
	// before (it is removed here) or finds the route gone after.
	a.n.followMu.Lock()
	defer a.n.followMu.Unlock()
	a.n.routes.remove(a.nsp)
	a.n.mu.Lock()
	_, read := a.n.topics[a.topic]
	delete(a.n.topics, a.topic)
	delete(a.n.pos, a.topic)
	a.n.mu.Unlock()
	if read {
		a.n.cl.RemoveConsumePartitions(map[string][]int32{a.topic: {0}})
	}
	return a.cluster.Memory.Close()
}

// Offset is the position of this node's reader in the namespace's topic:
// the offset after the newest record it has handed out.
func (a *kafkaAdapter) Offset() string {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	next, ok := a.n.pos[a.topic]
	if !ok {
		return ""
	}
	return kafkaOffset(next)
}
