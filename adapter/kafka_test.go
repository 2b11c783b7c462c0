package adapter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

// These tests run against kfake, franz-go's in-process implementation of
// the Kafka wire protocol (no Java Kafka can run on the test machines): a
// real client speaking the real protocol to a fake broker, stopped and
// restarted on the same port with its data directory, as a broker restart
// keeps its logs. The server package runs the cluster operations, the
// no-loss check and recovery across nodes on it (server/kafka_test.go).

// testKafka is a kfake broker of a test on a fixed port with a data
// directory, so stop and start is a broker restart that keeps the topics.
type testKafka struct {
	t    *testing.T
	port int
	dir  string
	c    *kfake.Cluster
}

func startTestKafka(t *testing.T) *testKafka {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	k := &testKafka{t: t, port: port, dir: t.TempDir()}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *testKafka) addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

func (k *testKafka) start() {
	k.t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir))
	if err != nil {
		k.t.Fatal(err)
	}
	k.c = c
}

func (k *testKafka) stop() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// sharedKafka is ROOMCAST_KAFKA_BROKERS, or a kfake broker of the test
// (stop ends it; the tests that stop and restart the broker always use
// kfake), with a topic prefix of the test's own.
func sharedKafka(t *testing.T, name string) (addr, prefix string, stop func()) {
	prefix = name + randomID(4)
	if b := os.Getenv("ROOMCAST_KAFKA_BROKERS"); b != "" {
		return b, prefix, func() {}
	}
	k := startTestKafka(t)
	return k.addr(), prefix, k.stop
}

// got is a Receiver that hands every delivery to a channel.
type got chan *Message

func (g got) Deliver(_ string, m *Message)        { g <- m }
func (got) Disconnect(string, bool)               {}
func (got) Describe(id string) (SocketInfo, bool) { return SocketInfo{ID: id}, true }
func (got) ServerSideEmit([]any, func(any))       {}
func (got) NextAckID() int64                      { return 1 }

// next returns the next delivery, which must be event ev with argument i.
func (g got) next(t *testing.T, ev string, i int) *Message {
	t.Helper()
	select {
	case m := <-g:
		if len(m.Data) < 2 || m.Data[0] != ev || fmt.Sprint(m.Data[1]) != fmt.Sprint(i) {
			t.Fatalf("got %v, want [%s %d]", m.Data, ev, i)
		}
		return m
	case <-time.After(time.Minute):
		t.Fatalf("no delivery of %s %d", ev, i)
		return nil
	}
}

func msg(ev string, i int) *Message {
	return &Message{Type: PacketEvent, Data: []any{ev, i}, AckID: -1}
}

// eventually waits for cond, polling; the test's own deadline bounds it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cutDialer dials through connections it can cut: cut closes them all and
// refuses new ones until restore, so one node loses Kafka while the
// others keep it.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("cut off")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) setCut(cut bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = cut
	if cut {
		for _, c := range d.conns {
			c.Close()
		}
		d.conns = nil
	}
}

func newTestKafkaNode(t *testing.T, addr, prefix string, opts ...kgo.Opt) (*KafkaNode, *atomic.Int64) {
	t.Helper()
	var errs atomic.Int64
	n, err := NewKafkaNode(KafkaConfig{Brokers: []string{addr}, Prefix: prefix, Heartbeat: time.Second,
		OnError: func(string, error) { errs.Add(1) }, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return n, &errs
}

// A node cut off from Kafka while the others go on delivers, once it is
// back, everything published meanwhile, in order and once, then the new
// broadcasts: its reader resumes from its own position.
func TestKafkaNodeResumesFromItsPosition(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, prefix, stop := sharedKafka(t, "resume")
	defer stop() // before goleak looks
	a, _ := newTestKafkaNode(t, addr, prefix)
	defer a.Close()
	d := &cutDialer{}
	b, errsB := newTestKafkaNode(t, addr, prefix, kgo.Dialer(d.dial))
	defer b.Close()
	ga, gb := make(got, 100), make(got, 100)
	aa := a.Adapter("/", ga, 0)
	ab := b.Adapter("/", gb, 0)
	aa.Join("s1", "s1", "r")
	ab.Join("s2", "s2", "r")
	if err := aa.Broadcast(msg("m", 0), Options{Rooms: []string{"r"}}); err != nil {
		t.Fatal(err)
	}
	ga.next(t, "m", 0)
	gb.next(t, "m", 0)

	d.setCut(true)
	eventually(t, "b notices the cut", func() bool { return b.down.Load() && errsB.Load() > 0 })
	if err := ab.Broadcast(msg("local", 0), Options{Rooms: []string{"r"}}); !errors.Is(err, ErrBackplaneDown) {
		t.Fatalf("broadcast while cut off: %v, want ErrBackplaneDown", err)
	}
	gb.next(t, "local", 0) // served locally all the same
	for i := 1; i <= 20; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
		ga.next(t, "m", i)
	}
	d.setCut(false)
	for i := 1; i <= 20; i++ {
		gb.next(t, "m", i)
	}
	aa.Broadcast(msg("m", 21), Options{Rooms: []string{"r"}})
	gb.next(t, "m", 21)
	// A fence: a duplicate of anything above, delivered late, would come
	// before it.
	aa.Broadcast(msg("fence", 0), Options{Rooms: []string{"r"}})
	gb.next(t, "fence", 0)
}

// Broker restarts (the same port and data): each time the nodes notice,
// refuse publishes, then deliver across nodes again, and their goroutines
// come back to what they were.
func TestKafkaBrokerRestarts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, _ := newTestKafkaNode(t, k.addr(), "restart")
	defer a.Close()
	b, _ := newTestKafkaNode(t, k.addr(), "restart")
	defer b.Close()
	ga, gb := make(got, 100), make(got, 100)
	aa := a.Adapter("/", ga, 0)
	ab := b.Adapter("/", gb, 0)
	aa.Join("s1", "s1")
	ab.Join("s2", "s2")
	eventually(t, "the nodes see each other", func() bool { return a.serverCount() == 2 && b.serverCount() == 2 })
	aa.Broadcast(msg("m", 0), Options{})
	ga.next(t, "m", 0)
	gb.next(t, "m", 0)
	base := runtime.NumGoroutine()
	sent := 0
	for round := 1; round <= 3; round++ {
		k.stop()
		eventually(t, "the nodes notice", func() bool { return a.down.Load() && b.down.Load() })
		if err := aa.Broadcast(msg("local", round), Options{}); !errors.Is(err, ErrBackplaneDown) {
			t.Fatalf("round %d: broadcast during the outage: %v", round, err)
		}
		ga.next(t, "local", round)
		k.start()
		// Publishing resumes once a node knows Kafka is back; b then gets
		// a's broadcasts, in order.
		eventually(t, "the nodes reconnect", func() bool { return !a.down.Load() && !b.down.Load() })
		sent++
		if err := aa.Broadcast(msg("m", sent), Options{}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ga.next(t, "m", sent)
		gb.next(t, "m", sent)
		eventually(t, "the goroutines come back", func() bool { return runtime.NumGoroutine() <= base+10 })
	}
	// Cluster requests work again too.
	eventually(t, "fetch sockets answered by both", func() bool {
		s, err := ab.FetchSockets(context.Background(), Options{})
		return err == nil && len(s) == 2
	})
}

// Two nodes restore one session at the same time: the first claim in the
// sessions topic wins, the other gets nothing.
func TestKafkaSessionRestoredOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, prefix, stop := sharedKafka(t, "once")
	defer stop() // before goleak looks
	a, _ := newTestKafkaNode(t, addr, prefix)
	defer a.Close()
	b, _ := newTestKafkaNode(t, addr, prefix)
	defer b.Close()
	ga, gb := make(got, 100), make(got, 100)
	aa := a.Adapter("/", ga, time.Minute)
	defer aa.Close()
	ab := b.Adapter("/", gb, time.Minute)
	defer ab.Close()
	aa.Join("s1", "s1", "r")
	aa.Broadcast(msg("m", 0), Options{Rooms: []string{"r"}})
	off := ga.next(t, "m", 0).Offset
	aa.LeaveAll("s1")
	aa.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: []string{"s1", "r"}, Base: off})
	for i := 1; i <= 3; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
	}
	// b has read the session (and the broadcasts) before the race.
	eventually(t, "b reads the session", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sessions["p1"] != nil && b.pos[ab.(*kafkaAdapter).topic] >= 4
	})
	var wins atomic.Int64
	var wg sync.WaitGroup
	for _, ad := range []Adapter{aa, ab} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := ad.RestoreSession("p1", off, func(*Session) {}); s != nil {
				wins.Add(1)
				if len(s.Missed) != 3 {
					t.Errorf("missed %d, want 3", len(s.Missed))
				}
				for i, m := range s.Missed {
					if m.Data[1] != float64(i+1) || !OffsetAfter(m.Offset, off) {
						t.Errorf("missed %d: %v at %s", i, m.Data, m.Offset)
					}
				}
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d restores of one session", wins.Load())
	}
}

// A restore that cannot read Kafka, or whose offset is not in the topic
// (trimmed, or never written), is refused; in the first case the session
// is still there once Kafka is back.
func TestKafkaRestoreRefusals(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, _ := newTestKafkaNode(t, k.addr(), "refuse")
	defer a.Close()
	ga := make(got, 100)
	aa := a.Adapter("/", ga, time.Minute)
	defer aa.Close()
	aa.Join("s1", "s1", "r")
	for i := 0; i < 5; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
		ga.next(t, "m", i)
	}
	save := func() {
		aa.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: []string{"s1", "r"}, Base: "0-1"})
	}
	save()
	k.stop()
	eventually(t, "a notices", func() bool { return a.down.Load() })
	if s := aa.RestoreSession("p1", "0-1", func(*Session) { t.Error("attached while Kafka is away") }); s != nil {
		t.Fatal("restored while Kafka is away")
	}
	k.start()
	eventually(t, "a reconnects", func() bool { return !a.down.Load() })
	// The session refused while Kafka was away is still there.
	if s := aa.RestoreSession("p1", "0-1", func(*Session) {}); s == nil || len(s.Missed) != 4 {
		t.Fatalf("restore once Kafka is back: %+v", s)
	}
	save()
	for _, off := range []string{"0-999", "1-2", "x", "0--1"} {
		if s := aa.RestoreSession("p1", off, func(*Session) {}); s != nil {
			t.Fatalf("restored from offset %q", off)
		}
		save()
	}
	// Trim the topic: an offset before its start has no exact catch-up.
	adm := kadm.NewClient(a.cl)
	topic := aa.(*kafkaAdapter).topic
	if _, err := adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	if s := aa.RestoreSession("p1", "0-1", func(*Session) {}); s != nil {
		t.Fatal("restored from a trimmed offset")
	}
	save()
	s := aa.RestoreSession("p1", "0-3", func(*Session) {})
	if s == nil || len(s.Missed) != 2 || s.Missed[0].Data[1] != float64(3) {
		t.Fatalf("restore from the topic's start: %+v", s)
	}
}

// failCreate makes the broker refuse the creation of topic while on is
// set: the node's follow of that topic fails while Kafka is up, as when a
// new topic's leader is not elected yet on a real cluster.
func (k *testKafka) failCreate(topic string, on *atomic.Bool) {
	k.c.ControlKey(int16(kmsg.CreateTopics), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		req := kr.(*kmsg.CreateTopicsRequest)
		if !on.Load() || len(req.Topics) != 1 || req.Topics[0].Topic != topic {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = topic
		rt.ErrorCode = kerr.PolicyViolation.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
}

// A node that does not read its namespace's topic yet, while Kafka is up,
// delivers its broadcasts to its own sockets at once (rather than write
// records it would never read back); once it reads the topic, broadcasts
// go through Kafka again.
func TestKafkaTopicNotReadYet(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, _ := newTestKafkaNode(t, k.addr(), "notread")
	defer a.Close()
	ga := make(got, 100)
	aa := a.Adapter("/", ga, time.Minute)
	defer aa.Close()
	topic := aa.(*kafkaAdapter).topic
	// A session of a's, with two broadcasts it missed.
	aa.Join("s1", "s1", "r")
	aa.Broadcast(msg("m", 0), Options{Rooms: []string{"r"}})
	off := ga.next(t, "m", 0).Offset
	aa.LeaveAll("s1")
	aa.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: []string{"s1", "r"}, Base: off})
	for i := 1; i <= 2; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
	}
	var blocked atomic.Bool
	blocked.Store(true)
	k.failCreate(topic, &blocked)
	b, errsB := newTestKafkaNode(t, k.addr(), "notread")
	defer b.Close()
	gb := make(got, 100)
	ab := b.Adapter("/", gb, time.Minute)
	defer ab.Close()
	if b.following(topic) || b.down.Load() {
		t.Fatalf("following %v, down %v: want a node up that does not read the topic", b.following(topic), b.down.Load())
	}
	ab.Join("s2", "s2", "r")
	before := errsB.Load()
	ab.Broadcast(msg("b", 0), Options{Rooms: []string{"r"}})
	if m := gb.next(t, "b", 0); m.Offset != "" {
		t.Fatalf("delivered with offset %q: not from Kafka", m.Offset)
	}
	if errsB.Load() == before {
		t.Fatal("the refused publish is not counted")
	}
	// Room operations still reach the other nodes.
	aa.Join("s3", "s3")
	if err := ab.AddSockets(Options{}, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a applies b's room operation", func() bool {
		return len(aa.(*kafkaAdapter).Rooms("s3")) == 2
	})
	// A restore now would leave a gap between what it replays and where
	// the live reader starts: refused, counted, the session kept.
	before = errsB.Load()
	if s := ab.RestoreSession("p1", off, func(*Session) { t.Error("attached while the topic is not read") }); s != nil {
		t.Fatal("restored while the topic is not read")
	}
	if errsB.Load() == before {
		t.Fatal("the refused restore is not counted")
	}
	blocked.Store(false)
	eventually(t, "b reads the topic", func() bool { return b.following(topic) })
	s := ab.RestoreSession("p1", off, func(*Session) {})
	if s == nil || len(s.Missed) != 2 || s.Missed[0].Data[1] != float64(1) || s.Missed[1].Data[1] != float64(2) {
		t.Fatalf("restore once the topic is read: %+v", s)
	}
	ab.Broadcast(msg("b", 1), Options{Rooms: []string{"r"}})
	if m := gb.next(t, "b", 1); m.Offset == "" {
		t.Fatal("delivered without an offset: not read back from Kafka")
	}
}

// A replay whose offset is trimmed away after the restore listed the
// topic's start fails rather than jump to the new start.
func TestKafkaReplayRefusesGap(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, _ := newTestKafkaNode(t, k.addr(), "replaygap")
	defer a.Close()
	ga := make(got, 100)
	aa := a.Adapter("/", ga, time.Minute)
	defer aa.Close()
	aa.Join("s1", "s1", "r")
	for i := 0; i < 5; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
		ga.next(t, "m", i)
	}
	ka := aa.(*kafkaAdapter)
	adm := kadm.NewClient(a.cl)
	if _, err := adm.DeleteRecords(context.Background(), kadm.Offsets{ka.topic: {0: {Topic: ka.topic, Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	// As if the start was listed (1) before the trim.
	r := &kafkaReplay{a: ka, s: &Session{}, rooms: map[string]struct{}{"r": {}}, next: 1}
	defer r.close()
	if err := r.readTo(5); err == nil {
		t.Fatalf("replay from a trimmed offset succeeded with %d missed", len(r.s.Missed))
	}
	if len(r.s.Missed) != 0 {
		t.Fatalf("%d missed kept from past the gap", len(r.s.Missed))
	}
}

// A node whose reader falls below the topic's start (cut off while the
// records it had not read were trimmed) says so: the gap is counted as a
// "subscribe" error, then delivery goes on.
func TestKafkaLiveGapReported(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, _ := newTestKafkaNode(t, k.addr(), "livegap")
	defer a.Close()
	d := &cutDialer{}
	var gaps atomic.Int64
	b, err := NewKafkaNode(KafkaConfig{Brokers: []string{k.addr()}, Prefix: "livegap", Heartbeat: time.Second,
		Options: []kgo.Opt{kgo.Dialer(d.dial)},
		OnError: func(op string, err error) {
			if op == "subscribe" && strings.Contains(err.Error(), "lost") {
				gaps.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ga, gb := make(got, 100), make(got, 100)
	aa := a.Adapter("/", ga, 0)
	ab := b.Adapter("/", gb, 0)
	aa.Join("s1", "s1", "r")
	ab.Join("s2", "s2", "r")
	aa.Broadcast(msg("m", 0), Options{Rooms: []string{"r"}})
	ga.next(t, "m", 0)
	gb.next(t, "m", 0)
	d.setCut(true)
	eventually(t, "b notices the cut", func() bool { return b.down.Load() })
	for i := 1; i <= 4; i++ {
		aa.Broadcast(msg("m", i), Options{Rooms: []string{"r"}})
		ga.next(t, "m", i)
	}
	topic := aa.(*kafkaAdapter).topic
	adm := kadm.NewClient(a.cl)
	if _, err := adm.DeleteRecords(context.Background(), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	d.setCut(false)
	gb.next(t, "m", 3) // from the new start: 1 and 2 are gone
	gb.next(t, "m", 4)
	if gaps.Load() != 1 {
		t.Fatalf("%d gaps reported, want 1", gaps.Load())
	}
}

// A claim record longer than a restore's claim (hostile, or not ours) is
// skipped and counted: it takes no session and holds no memory.
func TestKafkaLongClaimSkipped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	var decodeErrs atomic.Int64
	a, err := NewKafkaNode(KafkaConfig{Brokers: []string{k.addr()}, Prefix: "claim", Heartbeat: time.Second,
		OnError: func(op string, err error) {
			if op == "decode" {
				decodeErrs.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ga := make(got, 100)
	aa := a.Adapter("/", ga, time.Minute)
	defer aa.Close()
	aa.Join("s1", "s1", "r")
	aa.Broadcast(msg("m", 0), Options{Rooms: []string{"r"}})
	off := ga.next(t, "m", 0).Offset
	aa.LeaveAll("s1")
	aa.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: []string{"s1", "r"}, Base: off})
	long := make([]byte, 1<<16)
	next, err := a.produce(context.Background(), &kgo.Record{Topic: a.sessTopic, Key: []byte("p1"),
		Headers: []kgo.RecordHeader{{Key: kafkaClaimHeader, Value: long}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.waitSessions(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	e, size := a.sessions["p1"], a.sessSize
	a.mu.Unlock()
	if e == nil || e.claim != "" || size != len(e.raw) {
		t.Fatalf("after a long claim: session kept %v, %d bytes held", e != nil, size)
	}
	// Counted just after the reader moves past the record.
	eventually(t, "the long claim is counted", func() bool { return decodeErrs.Load() >= 1 })
	if s := aa.RestoreSession("p1", off, func(*Session) {}); s == nil {
		t.Fatal("the session is not restored after a long claim")
	}
}

// A flood of initial heartbeats while the node's produces hang costs one
// answering goroutine, not one per heartbeat, and Close waits for it.
func TestKafkaHeartbeatAnswersCoalesce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	a, err := NewKafkaNode(KafkaConfig{Brokers: []string{k.addr()}, Prefix: "flood", Heartbeat: time.Minute,
		RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
	}()
	// The node's produces (acks=all) wait until release is closed; the
	// flood's (acks=leader) go through.
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	k.c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		if kr.(*kmsg.ProduceRequest).Acks == -1 {
			k.c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	fc, err := kgo.NewClient(kgo.SeedBrokers(k.addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	base := runtime.NumGoroutine()
	const flood = 1000
	var recs []*kgo.Record
	for i := 0; i < flood; i++ {
		b, err := encodeClusterMsg(clusterMsg{UID: fmt.Sprintf("flood%d", i), Type: cmInitialHeartbeat})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: a.control, Partition: 0, Value: b})
	}
	if err := fc.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node reads the flood", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.seen) >= flood
	})
	if g := runtime.NumGoroutine(); g > base+100 {
		t.Fatalf("%d goroutines after %d initial heartbeats, %d before", g, flood, base)
	}
	close(release)
	released = true
	a.Close()
	closed = true
	if a.answering.Load() {
		t.Fatal("an answer goroutine outlives Close")
	}
}

// Topic names: the namespace's token, or a hash when it is too long.
func TestKafkaTopicNames(t *testing.T) {
	if got := kafkaNspTopic("roomcast", "/"); got != "roomcast.nLw" {
		t.Fatalf("topic of /: %s", got)
	}
	long := "/" + string(make([]byte, 300))
	if got := kafkaNspTopic("roomcast", long); len(got) > kafkaMaxTopic || !kafkaTopicName(got) {
		t.Fatalf("topic of a long name: %q", got)
	}
	for _, p := range []string{"a b", "a/b", "ä"} {
		if _, err := NewKafkaNode(KafkaConfig{Brokers: []string{"127.0.0.1:1"}, Prefix: p}); err == nil {
			t.Fatalf("prefix %q accepted", p)
		}
	}
}

// An adapter closed while its node retries reading the namespace's topic
// leaves the topic unread: the retry that was inside follow when Close
// ran does not add it, and ends.
func TestKafkaCloseWhileFollowRetried(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := startTestKafka(t)
	defer k.stop() // before goleak looks
	prefix := "closefollow"
	topic := kafkaNspTopic(prefix, "/")
	// CreateTopics of the topic fails while failing is set; once it is
	// not, the next one sleeps (inside follow, past its route check)
	// until release.
	var failing, slept atomic.Bool
	var attempts atomic.Int64
	failing.Store(true)
	entered, release := make(chan struct{}), make(chan struct{})
	released := sync.OnceFunc(func() { close(release) })
	defer released() // never leave the broker asleep
	k.c.ControlKey(int16(kmsg.CreateTopics), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		req := kr.(*kmsg.CreateTopicsRequest)
		if len(req.Topics) != 1 || req.Topics[0].Topic != topic {
			return nil, nil, false
		}
		attempts.Add(1)
		if failing.Load() {
			resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic = topic
			rt.ErrorCode = kerr.PolicyViolation.Code
			resp.Topics = append(resp.Topics, rt)
			return resp, nil, true
		}
		if slept.CompareAndSwap(false, true) {
			close(entered)
			k.c.SleepControl(func() { <-release })
		}
		return nil, nil, false // the broker creates it
	})
	n, _ := newTestKafkaNode(t, k.addr(), prefix)
	defer n.Close()
	a := n.Adapter("/", make(got, 10), time.Minute)
	if n.following(topic) {
		t.Fatal("following a topic whose creation fails")
	}
	eventually(t, "a retry fails", func() bool { return attempts.Load() >= 2 })
	failing.Store(false)
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("no retry of the topic's creation")
	}
	a.Close()
	released()
	// The retry goroutine ends without adding the topic.
	eventually(t, "the retry ends", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*KafkaNode).Adapter.func")
	})
	if n.following(topic) {
		t.Fatal("the closed adapter's topic is still followed")
	}
	if slices.Contains(n.cl.GetConsumeTopics(), topic) {
		t.Fatal("the closed adapter's topic is still consumed")
	}
	if a.(*kafkaAdapter).Offset() != "" {
		t.Fatal("the closed adapter still has a position")
	}
}

// One unreachable broker among three, leading none of the node's
// partitions: its failed dials (metadata requests go round the brokers)
// are reported, but the node is not down and its publishes go on.
func TestKafkaOneBrokerAwayNotDown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	prefix := "onebroker"
	topics := []string{kafkaControlTopic(prefix), prefix + "._sessions", kafkaNspTopic(prefix, "/")}
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // before goleak looks
	// The broker away is not the controller (topics are created there);
	// another one leads every partition of the node's.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	md, err := kadm.NewClient(cl).BrokerMetadata(context.Background())
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	var away string
	lead := int32(-1)
	for _, b := range md.Brokers {
		switch {
		case b.NodeID != md.Controller && away == "":
			away = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		case lead < 0:
			lead = b.NodeID
		}
	}
	for _, tp := range topics {
		if err := c.MoveTopicPartition(tp, 0, lead); err != nil {
			t.Fatal(err)
		}
	}
	addrs := c.ListenAddrs()
	// Its dials go to a port nothing listens on: refused, as when the
	// broker is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	var awayDials atomic.Int64
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		if host == away {
			awayDials.Add(1)
			host = closed
		}
		return (&net.Dialer{}).DialContext(ctx, network, host)
	}
	var errs atomic.Int64
	n, err := NewKafkaNode(KafkaConfig{Brokers: addrs, Prefix: prefix, Heartbeat: time.Second,
		OnError: func(string, error) { errs.Add(1) },
		Options: []kgo.Opt{kgo.Dialer(dial), kgo.MetadataMinAge(10 * time.Millisecond), kgo.MetadataMaxAge(20 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	g := make(got, 10)
	a := n.Adapter("/", g, 0)
	defer a.Close()
	eventually(t, "the node reads its topic", func() bool { return n.following(topics[2]) })
	a.Join("s1", "s1")
	start := awayDials.Load()
	deadline := time.Now().Add(time.Minute)
	sent := 0
	for ; sent < 20000 && (sent < 20 || awayDials.Load() < start+5); sent++ {
		if time.Now().After(deadline) {
			break
		}
		if n.down.Load() {
			t.Fatalf("publish %d: down with the partitions' broker reachable", sent)
		}
		if err := a.Broadcast(msg("m", sent), Options{}); err != nil {
			t.Fatalf("publish %d: %v", sent, err)
		}
		g.next(t, "m", sent)
	}
	if awayDials.Load() < start+5 {
		t.Fatalf("%d publishes saw only %d refused dials of the away broker", sent, awayDials.Load()-start)
	}
	if errs.Load() == 0 {
		t.Fatal("the refused dials are not reported")
	}
}
