package adapter

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A publisher whose flush is stuck refuses items once its queue is full,
// with ErrPublishQueueFull, counts each refusal, and refuses items after
// stop with ErrClosed.
func TestPublisherQueueFull(t *testing.T) {
	release := make(chan struct{})
	var fails atomic.Int64
	p := newPublisher(4, func([]int) { <-release }, func(string, error) { fails.Add(1) })
	var err error
	queued := 0
	for i := 0; i < 100 && err == nil; i++ {
		if err = p.queue(i); err == nil {
			queued++
		}
	}
	if !errors.Is(err, ErrPublishQueueFull) {
		t.Fatalf("after %d items: %v, want ErrPublishQueueFull", queued, err)
	}
	if queued > 4+publishBatch {
		t.Fatalf("%d items queued past a queue of 4", queued)
	}
	if fails.Load() != 1 {
		t.Fatalf("%d failures counted, want 1", fails.Load())
	}
	close(release)
	p.stop()
	if err := p.queue(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("queue after stop: %v, want ErrClosed", err)
	}
}

// A cluster backplane whose publisher is full still delivers a broadcast
// to the local sockets and returns ErrPublishQueueFull from Broadcast,
// AddSockets, DelSockets and DisconnectSockets.
func TestClusterBroadcastQueueFull(t *testing.T) {
	release := make(chan struct{})
	p := newPublisher(1, func([]func()) { <-release }, func(string, error) {})
	defer p.stop()
	defer close(release)
	rec := &recorder{}
	c := newCluster(rec, 0, "/", "uid", time.Second, nil, func(string, error) {}, p.queue)
	defer c.Memory.Close()
	c.Join("a", "a", "r")
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = c.Broadcast(&Message{Type: PacketEvent, Data: []any{"x"}, AckID: -1}, Options{Rooms: []string{"r"}})
	}
	if !errors.Is(err, ErrPublishQueueFull) {
		t.Fatalf("Broadcast: %v, want ErrPublishQueueFull", err)
	}
	rec.mu.Lock()
	n := len(rec.got["a"])
	rec.mu.Unlock()
	if n == 0 {
		t.Fatal("the local socket did not receive the refused broadcast")
	}
	if err := c.AddSockets(Options{}, []string{"s"}); !errors.Is(err, ErrPublishQueueFull) {
		t.Fatalf("AddSockets: %v", err)
	}
	if !slicesContain(c.Rooms("a"), "s") {
		t.Fatal("AddSockets did not apply locally")
	}
	if err := c.DelSockets(Options{}, []string{"s"}); !errors.Is(err, ErrPublishQueueFull) {
		t.Fatalf("DelSockets: %v", err)
	}
	if err := c.DisconnectSockets(Options{}, false); !errors.Is(err, ErrPublishQueueFull) {
		t.Fatalf("DisconnectSockets: %v", err)
	}
	if err := c.Broadcast(&Message{Type: PacketEvent, Data: []any{"y"}, AckID: -1}, Options{Local: true}); err != nil {
		t.Fatalf("local broadcast: %v", err)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
