package adapter

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Flush returns once every broadcast queued before it has gone out to
// Redis: what the HTTP API waits for before it answers.
func TestFlushWaitsForThePublishes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, prefix := testRedis(t)
	const n = 2000
	for _, kind := range []string{"redis", "redis-streams"} {
		t.Run(kind, func(t *testing.T) {
			var published atomic.Int64
			stats := &Stats{Published: func(k int, _ time.Duration, err error) {
				if err == nil {
					published.Add(int64(k))
				}
			}}
			var a Adapter
			switch kind {
			case "redis":
				node, err := NewRedisNode(RedisConfig{Client: c, Prefix: prefix, Stats: stats})
				if err != nil {
					t.Fatal(err)
				}
				defer node.Close()
				a = node.Adapter("/", heard(make(chan string, 16)), 0)
			default:
				node, err := NewStreamsNode(StreamsConfig{RedisConfig: RedisConfig{Client: c, Prefix: prefix, Stats: stats}, Stream: prefix + "-stream"})
				if err != nil {
					t.Fatal(err)
				}
				defer node.Close()
				a = node.Adapter("/", heard(make(chan string, n+16)), 0)
			}
			defer a.Close()
			before := published.Load()
			for i := range n {
				if err := a.Broadcast(event(fmt.Sprint(i)), Options{Rooms: []string{"r"}}); err != nil {
					t.Fatal(err)
				}
			}
			f, ok := a.(Flusher)
			if !ok {
				t.Fatalf("%T is no Flusher", a)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := published.Load() - before; got < n {
				t.Fatalf("Flush returned with %d of %d broadcasts published", got, n)
			}
		})
	}
}
