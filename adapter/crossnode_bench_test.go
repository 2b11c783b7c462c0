package adapter

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
