package adapter

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
)

// counter is a Receiver that counts deliveries and signals the n-th.
type counter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *counter) Deliver(string, *Message) {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
}
func (c *counter) Disconnect(string, bool)               {}
func (c *counter) Describe(id string) (SocketInfo, bool) { return SocketInfo{ID: id}, true }
func (c *counter) ServerSideEmit([]any, func(any))       {}
func (c *counter) NextAckID() int64                      { return 1 }

type benchNode interface {
	Adapter(nsp string, recv Receiver, window time.Duration) Adapter
	Close() error
}

// benchCrossNode measures how fast broadcasts from one node reach a
// socket on another: b.N broadcasts, timed until the last one arrives.
func benchCrossNode(b *testing.B, mk func() benchNode) {
	from, to := mk(), mk()
	defer from.Close()
	defer to.Close()
	src := from.Adapter("/", &counter{}, 0)
	recv := &counter{want: int64(b.N), done: make(chan struct{})}
	dst := to.Adapter("/", recv, 0)
	dst.Join("s1", "s1", "room")
	time.Sleep(200 * time.Millisecond) // subscriptions settle
	msg := []any{"ev", "payload of a typical chat message, about sixty bytes long"}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		src.Broadcast(&Message{Type: PacketEvent, Data: msg, AckID: -1}, Options{Rooms: []string{"room"}})
	}
	select {
	case <-recv.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d arrived", recv.n.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func benchRedis(b *testing.B) RedisConfig {
	url := os.Getenv("ROOMCAST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	c := redis.NewClient(opts)
	b.Cleanup(func() { c.Close() })
	return RedisConfig{Client: c, Prefix: "bench-" + randomID(4)}
}

func BenchmarkCrossNodeRedis(b *testing.B) {
	cfg := benchRedis(b)
	benchCrossNode(b, func() benchNode { n, _ := NewRedisNode(cfg); return n })
}

func BenchmarkCrossNodeSharded(b *testing.B) {
	cfg := benchRedis(b)
	benchCrossNode(b, func() benchNode { n, _ := NewShardedNode(cfg); return n })
}

// stamp is a Receiver that hands each delivery's arrival to a channel.
type stamp struct{ got chan struct{} }

func (s *stamp) Deliver(string, *Message)              { s.got <- struct{}{} }
func (s *stamp) Disconnect(string, bool)               {}
func (s *stamp) Describe(id string) (SocketInfo, bool) { return SocketInfo{ID: id}, true }
func (s *stamp) ServerSideEmit([]any, func(any))       {}
func (s *stamp) NextAckID() int64                      { return 1 }

// benchLatency measures the time from Broadcast on one node to delivery on
// another, one message at a time, 1,000 messages per run (b.N runs), and
// reports the median and the 99th percentile.
func benchLatency(b *testing.B, mk func() benchNode) {
	from, to := mk(), mk()
	defer from.Close()
	defer to.Close()
	src := from.Adapter("/", &counter{}, 0)
	recv := &stamp{got: make(chan struct{}, 1)}
	dst := to.Adapter("/", recv, 0)
	dst.Join("s1", "s1", "room")
	msg := []any{"ev", "payload of a typical chat message, about sixty bytes long"}
	// Wait until the path works (subscriptions settled).
	for ok := false; !ok; {
		src.Broadcast(&Message{Type: PacketEvent, Data: msg, AckID: -1}, Options{Rooms: []string{"room"}})
		select {
		case <-recv.got:
			ok = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	for len(recv.got) > 0 {
		<-recv.got
	}
	var all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 1000; j++ {
			start := time.Now()
			src.Broadcast(&Message{Type: PacketEvent, Data: msg, AckID: -1}, Options{Rooms: []string{"room"}})
			select {
			case <-recv.got:
			case <-time.After(10 * time.Second):
				b.Fatal("lost a message")
			}
			all = append(all, time.Since(start))
		}
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

func benchNATSURL() string {
	if u := os.Getenv("ROOMCAST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func BenchmarkCrossNodeLatencyRedis(b *testing.B) {
	cfg := benchRedis(b)
	benchLatency(b, func() benchNode { n, _ := NewRedisNode(cfg); return n })
}

func BenchmarkCrossNodeLatencySharded(b *testing.B) {
	cfg := benchRedis(b)
	benchLatency(b, func() benchNode { n, _ := NewShardedNode(cfg); return n })
}

func BenchmarkCrossNodeLatencyStreams(b *testing.B) {
	cfg := StreamsConfig{RedisConfig: benchRedis(b)}
	cfg.Stream = cfg.Prefix
	b.Cleanup(func() { cfg.Client.Del(context.Background(), cfg.Stream) })
	benchLatency(b, func() benchNode { n, _ := NewStreamsNode(cfg); return n })
}

func BenchmarkCrossNodeLatencyNATS(b *testing.B) {
	cfg := NATSConfig{URL: benchNATSURL(), Prefix: "bench" + randomID(4)}
	benchLatency(b, func() benchNode {
		n, err := NewNATSNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

func BenchmarkCrossNodeLatencyJetStream(b *testing.B) {
	cfg := JetStreamConfig{NATSConfig: NATSConfig{URL: benchNATSURL(), Prefix: "bench" + randomID(4)}}
	var first *JetStreamNode
	b.Cleanup(func() {
		if first != nil {
			first.js.DeleteStream(context.Background(), first.jcfg.Stream)
		}
	})
	benchLatency(b, func() benchNode {
		n, err := NewJetStreamNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if first == nil {
			first = n
		}
		return n
	})
}

func BenchmarkCrossNodeNATS(b *testing.B) {
	cfg := NATSConfig{URL: benchNATSURL(), Prefix: "bench" + randomID(4)}
	benchCrossNode(b, func() benchNode { n, _ := NewNATSNode(cfg); return n })
}

// benchKafka is the Kafka of the benchmarks: ROOMCAST_KAFKA_BROKERS, or a
// kfake broker in this process (franz-go's implementation of the wire
// protocol, not a real broker: it shares the benchmark's CPU and its
// storage is not Kafka's), with a topic prefix of the run's own.
func benchKafka(b *testing.B) KafkaConfig {
	brokers := os.Getenv("ROOMCAST_KAFKA_BROKERS")
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		brokers = strings.Join(c.ListenAddrs(), ",")
	}
	return KafkaConfig{Brokers: strings.Split(brokers, ","), Prefix: "bench" + randomID(4)}
}

func BenchmarkCrossNodeLatencyKafka(b *testing.B) {
	cfg := benchKafka(b)
	benchLatency(b, func() benchNode {
		n, err := NewKafkaNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

func BenchmarkCrossNodeKafka(b *testing.B) {
	cfg := benchKafka(b)
	benchCrossNode(b, func() benchNode {
		n, err := NewKafkaNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}
