package adapter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A broadcast published as soon as a cross-node socketsJoin returns reaches
// the joined socket on the other node: AddSockets waits until the other
// roomcast nodes applied the join and Redis has their subscriptions.
func TestRedisRemoteJoinThenBroadcast(t *testing.T) {
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
	to.Join("s", "s")
	for i := range 200 {
		room := fmt.Sprint("room-", i)
		if err := from.AddSockets(Options{Rooms: []string{"s"}}, []string{room}); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
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

// A roomcast peer that never answers a remote join (stuck, or dying)
// delays a cross-node socketsJoin by at most joinWait, and the join still
// applies and is no error. A Node peer (on the request channel only) is not
// waited for at all: it does not answer this request.
func TestRedisRemoteJoinSilentPeer(t *testing.T) {
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
	to.Join("s", "s")

	// A silent live roomcast node: a Redis subscriber on the request and
	// peer channels (PUBSUB NUMSUB counts it) that answers nothing.
	silent := c.Subscribe(context.Background(), prefix+"-request#/#", prefix+"-roomcast#/#")
	defer silent.Close()
	for range 2 {
		if _, err := silent.Receive(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := from.ServerCount(context.Background()); n != 3 {
		t.Fatalf("server count %d, want 3", n)
	}
	if n := numSubOf(t, c, prefix+"-roomcast#/#"); n != 3 {
		t.Fatalf("roomcast peers %d, want 3", n)
	}
	start := time.Now()
	if err := from.AddSockets(Options{Rooms: []string{"s"}}, []string{"r"}); err != nil {
		t.Fatalf("AddSockets with a silent peer: %v", err)
	}
	// The wait is bounded by joinWait (plus the NUMSUB round trip and a
	// loaded machine's scheduling): never the full safety net.
	if d := time.Since(start); d >= safetyNet {
		t.Fatalf("AddSockets took %v", d)
	}
	from.Broadcast(event("r"), Options{Rooms: []string{"r"}})
	if got := next(t, h); got != "r" {
		t.Fatalf("got %q, want r", got)
	}
	from.Close()
	to.Close()
}
