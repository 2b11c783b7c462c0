package adapter

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// safetyNet bounds the waits on events that should come at once (a loaded
// CI machine can be slow, never this slow).
const safetyNet = 60 * time.Second

// heard is a Receiver that passes on the first argument of each delivery.
type heard chan string

func (h heard) Deliver(_ string, m *Message) {
	s, _ := m.Data[0].(string)
	h <- s
}
func (heard) Disconnect(string, bool)               {}
func (heard) Describe(id string) (SocketInfo, bool) { return SocketInfo{ID: id}, true }
func (heard) ServerSideEmit([]any, func(any))       {}
func (heard) NextAckID() int64                      { return 1 }

func testRedis(t *testing.T) (redis.UniversalClient, string) {
	url := os.Getenv("ROOMCAST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		t.Fatalf("redis at %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, "rooms-" + randomID(4)
}

func next(t *testing.T, h heard) string {
	t.Helper()
	select {
	case s := <-h:
		return s
	case <-time.After(safetyNet):
		t.Fatal("no delivery")
		return ""
	}
}

func event(s string) *Message { return &Message{Type: PacketEvent, Data: []any{s}, AckID: -1} }

func numSubOf(t *testing.T, c redis.UniversalClient, ch string) int64 {
	t.Helper()
	m, err := c.PubSubNumSub(context.Background(), ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m[ch]
}

// A node subscribes to a room's channel only while the room has a member
// there: the broadcasts to other rooms do not reach it at all.
func TestRedisSubscribesPerRoom(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, prefix := testRedis(t)
	var received atomic.Int64
	a, err := NewRedisNode(RedisConfig{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewRedisNode(RedisConfig{Client: c, Prefix: prefix, Stats: &Stats{Received: func() { received.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	from := a.Adapter("/", heard(make(chan string, 16)), 0)
	h := heard(make(chan string, 16))
	to := b.Adapter("/", h, 0)
	to.Join("s1", "s1", "mine")

	room := func(r string) string { return prefix + "#/#" + r + "#" }
	if n := numSubOf(t, c, room("mine")); n != 1 {
		t.Fatalf("subscribers of the joined room's channel: %d, want 1", n)
	}
	if n := numSubOf(t, c, room("other")); n != 0 {
		t.Fatalf("subscribers of another room's channel: %d, want 0", n)
	}
	if n := numSubOf(t, c, room("s1")); n != 1 {
		t.Fatalf("subscribers of a socket's own room's channel: %d, want 1 (broadcasts to one socket id go there)", n)
	}

	// One publisher connection keeps the order: had the other room's
	// broadcasts reached b, they would have before the last one.
	const others = 50
	for i := range others {
		from.Broadcast(event(fmt.Sprint("other ", i)), Options{Rooms: []string{"other"}})
	}
	from.Broadcast(event("mine"), Options{Rooms: []string{"mine"}})
	from.Broadcast(event("to s1"), Options{Rooms: []string{"s1"}})
	from.Broadcast(event("all"), Options{})
	for _, want := range []string{"mine", "to s1", "all"} {
		if got := next(t, h); got != want {
			t.Fatalf("delivery %q, want %q", got, want)
		}
	}
	if n := received.Load(); n != 3 {
		t.Fatalf("b read %d messages from Redis, want 3 (the other room's %d are not for it)", n, others)
	}

	// The last member leaves: the subscription goes.
	to.Leave("s1", "mine")
	b.settle()
	if n := numSubOf(t, c, room("mine")); n != 0 {
		t.Fatalf("subscribers of the left room's channel: %d, want 0", n)
	}
	from.Close()
	to.Close()
}

// A broadcast published by another node as soon as a join returns reaches
// the joined socket: the join waits for Redis to have the room's
// subscription.
func TestRedisJoinThenRemoteBroadcast(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, prefix := testRedis(t)
	a, err := NewRedisNode(RedisConfig{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewRedisNode(RedisConfig{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	from := a.Adapter("/", heard(make(chan string, 16)), 0)
	h := heard(make(chan string, 16))
	to := b.Adapter("/", h, 0)
	for i := range 200 {
		room := fmt.Sprint("room-", i)
		to.Join("s", room)
		// Then, in order on a's publisher connection: the room's
		// broadcast, and one to everyone (b always hears those).
		from.Broadcast(event(room), Options{Rooms: []string{room}})
		from.Broadcast(event("end"), Options{})
		if got := next(t, h); got != room {
			t.Fatalf("join %d: the room's broadcast was lost (got %q first)", i, got)
		}
		if got := next(t, h); got != "end" {
			t.Fatalf("join %d: got %q, want end", i, got)
		}
		to.Leave("s", room)
	}
	from.Close()
	to.Close()
}
