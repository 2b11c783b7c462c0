package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// The kafka backplane's tests run against kfake, franz-go's in-process
// implementation of the Kafka wire protocol (no Java Kafka can run on the
// test machines): the same client, the same requests and answers, but not
// a real broker (one process, its own storage code, its own timing). With
// ROOMCAST_KAFKA_BROKERS set (host:port,...) the tests that need no control
// of the broker run against that cluster instead; the outage and restart
// tests need to stop the broker and always run on kfake.

// kafkaBroker is a kfake cluster of a test, on its own port, storing in a
// directory of the test so a restart keeps the topics, their records and
// the producers' state, as a real broker's restart does.
type kafkaBroker struct {
	t    testing.TB
	port int
	dir  string
	c    *kfake.Cluster
}

func startKafka(t testing.TB) *kafkaBroker {
	t.Helper()
	k := &kafkaBroker{t: t, port: freePort(t), dir: t.TempDir()}
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *kafkaBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

func (k *kafkaBroker) start() {
	k.t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.DataDir(k.dir))
	if err != nil {
		k.t.Fatal(err)
	}
	k.c = c
}

func (k *kafkaBroker) stop() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// kafkaBrokers is ROOMCAST_KAFKA_BROKERS, or a kfake cluster of the test.
func kafkaBrokers(t testing.TB) string {
	if b := os.Getenv("ROOMCAST_KAFKA_BROKERS"); b != "" {
		return b
	}
	return startKafka(t).addr()
}

// kafkaPrefix is a topic prefix of the test's own, so tests sharing a real
// broker do not hear each other.
func kafkaPrefix() string {
	return "rc" + strings.NewReplacer("-", "", "_", "").Replace(clients.NewID()[:10])
}

func kafkaCluster(t *testing.T, brokers string, n int, cfg Config) ([]*Server, []string) {
	cfg.Backplane = "kafka"
	if cfg.KafkaTopicPrefix == "" {
		cfg.KafkaTopicPrefix = kafkaPrefix()
	}
	return clusterAt(t, brokers, n, cfg)
}

func TestKafkaCrossNodeOperations(t *testing.T) {
	crossNode(t, kafkaBrokers(t), "kafka")
}

// A request to a cluster whose node left waits only for the live nodes.
func TestKafkaDeadNodeDoesNotHang(t *testing.T) {
	srvs, addrs := kafkaCluster(t, kafkaBrokers(t), 3, Config{})
	ctx := context.Background()
	for _, a := range addrs {
		dialRaw(t, a, 0).connect("/")
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 3 })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	srvs[2].Shutdown(sctx)
	cancel()
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
	socks, err := srvs[0].Of("/").FetchSockets(ctx)
	if err != nil || len(socks) != 2 {
		t.Fatalf("%d sockets, %v", len(socks), err)
	}
}

// The broker goes away and comes back (a restart with its data): nodes
// serve locally meanwhile, refuse publishes with ErrBackplaneDown, count
// the errors, do not grow goroutines, and deliver across nodes again after.
func TestKafkaOutage(t *testing.T) {
	k := startKafka(t)
	srvs, addrs := kafkaCluster(t, k.addr(), 2, Config{})
	ctx := context.Background()
	a, b := dialRaw(t, addrs[0], 0), dialRaw(t, addrs[1], 0)
	a.connect("/")
	b.connect("/")
	a.join("r")
	b.join("r")
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
	srvs[0].To("r").Emit(ctx, "before")
	a.expect(`before`)
	b.expect(`before`)
	goroutines := runtime.NumGoroutine()

	k.stop()
	waitFor(t, func() bool {
		return testutil.ToFloat64(srvs[0].metrics.backplaneErrors.WithLabelValues("subscribe")) > 0
	})
	for i := 0; i < 5; i++ {
		if err := srvs[0].To("r").Emit(ctx, "during", i); !errors.Is(err, ErrBackplaneDown) {
			t.Fatalf("emit during the outage: %v, want ErrBackplaneDown", err)
		}
		a.expect(fmt.Sprintf(`"during",%d`, i))
	}
	code, _, out := apiDo(t, "POST", "http://"+addrs[0]+"/api/v1/emit", "application/json", "", `{"event":"during","data":5,"rooms":["r"]}`)
	if msg, _ := out["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "backplane") {
		t.Fatalf("API emit during the outage: %d %v", code, out)
	}
	a.expect(`"during",5`)
	a.write(`421["publish",{"room":"r","event":"during","data":6}]`)
	a.expect(`^431\[\{"error":"kafka: backplane: not connected"`)
	if g := runtime.NumGoroutine(); g > goroutines+20 {
		t.Fatalf("goroutines grew from %d to %d during the outage", goroutines, g)
	}

	k.start()
	resumed(t, func() { srvs[0].To("r").Emit(ctx, "after") }, b)
	resumed(t, func() { srvs[1].To("r").Emit(ctx, "after") }, a)
	waitFor(t, func() bool {
		s, err := srvs[1].Of("/").FetchSockets(ctx)
		return err == nil && len(s) == 2
	})
	if g := runtime.NumGoroutine(); g > goroutines+20 {
		t.Fatalf("goroutines grew from %d to %d after the outage", goroutines, g)
	}
}

// 100 clients on 3 nodes get 2,000 broadcasts from one node: every one,
// once, in order.
func TestKafkaNoLoss(t *testing.T) {
	srvs, addrs := kafkaCluster(t, kafkaBrokers(t), 3, Config{RecoveryWindow: -1})
	checkNoLoss(t, srvs, addrs)
}

// A client that drops from one node and comes back to another within the
// window gets what it missed (read from the namespace's topic from its
// offset), once, in order.
func TestKafkaRecoveryAcrossNodes(t *testing.T) {
	srvs, addrs := kafkaCluster(t, kafkaBrokers(t), 2, Config{RecoveryWindow: time.Minute})
	ctx := context.Background()
	a := dialRaw(t, addrs[0], 0)
	ans := a.connect("/")
	sid := sidOf(ans)
	pid := regexp.MustCompile(`"pid":"([^"]+)"`).FindStringSubmatch(ans)[1]
	a.join("r")
	waitFor(t, func() bool { return srvs[1].Of("/").Adapter().ServerCount(ctx) == 2 })
	srvs[1].To("r").Emit(ctx, "m", 0)
	got := a.expect(`^42\["m",0,"`)
	offset := regexp.MustCompile(`"(0-[0-9]+)"\]$`).FindStringSubmatch(got)[1]
	a.ws.Close()
	waitFor(t, func() bool { return srvs[0].Of("/").Socket(sid) == nil })
	for i := 1; i <= 5; i++ {
		srvs[0].To("r").Emit(ctx, "m", i)
		srvs[0].To("other").Emit(ctx, "not for r", i)
	}
	b := dialRaw(t, addrs[1], 0)
	b.write(fmt.Sprintf(`40{"pid":%q,"offset":%q}`, pid, offset))
	if ans := b.read(); sidOf(ans) != sid {
		t.Fatalf("not recovered: %q (socket was %s)", ans, sid)
	}
	for i := 1; i <= 5; i++ {
		b.next(fmt.Sprintf(`^42\["m",%d,"0-[0-9]+"\]$`, i))
	}
	srvs[1].To("r").Emit(ctx, "m", 6)
	b.next(`^42\["m",6,`)
}

// Hostile records in every topic the nodes read are skipped and counted;
// the nodes go on.
func TestKafkaHostileRecords(t *testing.T) {
	brokers := kafkaBrokers(t)
	prefix := kafkaPrefix()
	srvs, addrs := kafkaCluster(t, brokers, 2, Config{RecoveryWindow: time.Minute, KafkaTopicPrefix: prefix})
	ctx := context.Background()
	var cl []*rawClient
	for _, a := range addrs {
		c := dialRaw(t, a, 0)
		c.connect("/")
		c.join("r")
		cl = append(cl, c)
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
	kc, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	nspTopic := prefix + ".nLw" // token("/")
	topics := []string{nspTopic, prefix + "._control", prefix + "._sessions"}
	n := 0.0
	for name, p := range hostilePayloads() {
		if len(p) > 1<<20 {
			continue // past the broker's message.max.bytes: refused
		}
		for _, topic := range topics {
			r := &kgo.Record{Topic: topic, Value: p}
			if strings.HasSuffix(topic, "_sessions") {
				r.Key = []byte("some-pid")
			}
			if err := kc.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("%s into %s: %v", name, topic, err)
			}
			n++
			counted(t, srvs, n)
		}
	}
	// A claim record longer than a restore's claim.
	r := &kgo.Record{Topic: prefix + "._sessions", Key: []byte("some-pid"),
		Headers: []kgo.RecordHeader{{Key: "claim", Value: make([]byte, 1<<16)}}}
	if err := kc.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("long claim: %v", err)
	}
	n++
	counted(t, srvs, n)
	srvs[0].To("r").Emit(ctx, "still", 1)
	for _, c := range cl {
		c.expect(`^42\["still",1`)
	}
}

// An emitter outside the cluster (the Go Emitter, the roomcast emit
// command) reaches the sockets of every node on the kafka backplane.
func TestKafkaEmitter(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "roomcast")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/roomcast").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	brokers := kafkaBrokers(t)
	prefix := kafkaPrefix()
	srvs, addrs := kafkaCluster(t, brokers, 2, Config{RecoveryWindow: -1, KafkaTopicPrefix: prefix})
	ctx := context.Background()
	kc, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	var cl []*rawClient
	for i, rooms := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
		c := dialRaw(t, addrs[min(i, 1)], 0)
		c.connect("/")
		for _, r := range rooms {
			c.join(r)
		}
		cl = append(cl, c)
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
	e, err := adapter.NewEmitterWith(adapter.EmitterConfig{Kafka: kc, Backplane: adapter.BackplaneKafka, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, event string, receivers []int) {
		t.Helper()
		if err := e.Emit(ctx, "fence", event); err != nil {
			t.Fatal(err)
		}
		for i, c := range cl {
			if slicesContains(receivers, i) {
				c.next(fmt.Sprintf(`^42\[%q,1\]$`, event))
			}
			c.next(fmt.Sprintf(`^42\["fence",%q\]$`, event))
		}
	}
	cases := []struct {
		name      string
		goEmit    func(event string) error
		cmd       []string
		receivers []int
	}{
		{"all", func(ev string) error { return e.Emit(ctx, ev, 1) }, nil, []int{0, 1, 2}},
		{"room", func(ev string) error { return e.To("a").Emit(ctx, ev, 1) }, []string{"--room", "a"}, []int{0, 1}},
		{"two rooms", func(ev string) error { return e.To("a", "b").Emit(ctx, ev, 1) }, []string{"--room", "a,b"}, []int{0, 1, 2}},
		{"room except a room", func(ev string) error { return e.To("a").Except("b").Emit(ctx, ev, 1) }, []string{"--room", "a", "--except", "b"}, []int{0}},
	}
	for _, tc := range cases {
		t.Run("go "+tc.name, func(t *testing.T) {
			ev := "go " + tc.name
			if err := tc.goEmit(ev); err != nil {
				t.Fatal(err)
			}
			check(t, ev, tc.receivers)
		})
		t.Run("command "+tc.name, func(t *testing.T) {
			ev := "cmd " + tc.name
			args := append([]string{"emit", "--adapter", "kafka", "--kafka-brokers", brokers, "--kafka-topic-prefix", prefix, "--event", ev, "--data", "1"}, tc.cmd...)
			cmd := exec.Command(bin, args...)
			cmd.Env = os.Environ()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("roomcast %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			check(t, ev, tc.receivers)
		})
	}
	t.Run("socket joins, server-side emit and disconnect", func(t *testing.T) {
		if err := e.To("a").SocketsJoin(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			s, _ := srvs[0].Of("/").To("c").FetchSockets(ctx)
			return len(s) == 2
		})
		got := make(chan []any, 2)
		for _, s := range srvs {
			s.Of("/").OnServerSideEmit("from-emitter", func(args []any, _ func(any)) { got <- args })
		}
		if err := e.ServerSideEmit(ctx, "from-emitter", "x"); err != nil {
			t.Fatal(err)
		}
		for range srvs {
			select {
			case a := <-got:
				if len(a) != 1 || a[0] != "x" {
					t.Fatalf("args %v", a)
				}
			case <-time.After(safetyNet):
				t.Fatal("server-side emit did not arrive")
			}
		}
		if err := e.To("c").DisconnectSockets(ctx, false); err != nil {
			t.Fatal(err)
		}
		cl[0].expect(`^41$`)
		cl[1].expect(`^41$`)
	})
}
