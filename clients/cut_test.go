package clients

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// A queue whose Disconnect policy refused a packet refuses every later one,
// control packets too, even while a writer keeps draining it: the packets a
// writer takes are, per pusher, a gap-free prefix of what it pushed.
func TestQueueCutIsPrefix(t *testing.T) {
	const (
		pushers = 4
		each    = 2000
	)
	q := NewQueue(QueueConfig{MaxPackets: 16, MaxBytes: -1, Policy: Disconnect}, nil, Stats{})

	var (
		cutSeen atomic.Bool  // set once a push returned Full
		fulls   atomic.Int32 // how many pushes returned Full
		full    = make(chan struct{})
		once    sync.Once
		stop    = make(chan struct{})
		taken   = make([][]int, pushers)
		results = make([][]PushResult, pushers)
		errs    = make(chan error, pushers)
	)
	// The writer starts at the first Full, so the queue surely fills, and
	// then makes room while the pushers go on: on a queue that only refuses
	// while it is over its bound, later packets would be taken.
	record := func(entries []Entry) {
		for _, e := range entries {
			var id, seq int
			fmt.Sscanf(string(e.Packet.Frames[0].Data), "%d-%d", &id, &seq)
			taken[id] = append(taken[id], seq)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-full:
		case <-stop:
		}
		for {
			record(q.Take(nil))
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	var pw sync.WaitGroup
	for id := range pushers {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for seq := range each {
				kind := Droppable
				if seq%10 == 9 {
					kind = Control
				}
				before := cutSeen.Load()
				res := q.Push(pkt(kind, fmt.Sprintf("%d-%d", id, seq)))
				results[id] = append(results[id], res)
				if res == Full {
					fulls.Add(1)
					cutSeen.Store(true)
					once.Do(func() { close(full) })
				}
				if before && res != Closed {
					errs <- fmt.Errorf("pusher %d: packet %d pushed after the cut got %d, want Closed", id, seq, res)
					return
				}
			}
		}()
	}
	pw.Wait()
	close(stop)
	wg.Wait()
	record(q.Take(nil))
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if n := fulls.Load(); n != 1 {
		t.Errorf("%d pushes returned Full, want exactly 1", n)
	}
	// Once the queue is empty and drained, it still refuses.
	if res := q.Push(pkt(Droppable, "0-999999")); res != Closed {
		t.Errorf("push after the cut and a full drain: %d, want Closed", res)
	}
	if res := q.Push(pkt(Control, "0-999998")); res != Closed {
		t.Errorf("control push after the cut: %d, want Closed", res)
	}
	for id := range pushers {
		// The accepted pushes are a prefix of the pusher's sequence ...
		accepted := 0
		for accepted < len(results[id]) && results[id][accepted] == Queued {
			accepted++
		}
		for seq := accepted; seq < len(results[id]); seq++ {
			if results[id][seq] == Queued {
				t.Errorf("pusher %d: packet %d queued after packet %d was refused", id, seq, accepted)
				break
			}
		}
		// ... and the writer took exactly those, in order.
		if len(taken[id]) != accepted {
			t.Errorf("pusher %d: writer took %d packets, %d were queued", id, len(taken[id]), accepted)
		}
		for i, seq := range taken[id] {
			if seq != i {
				t.Errorf("pusher %d: taken packet %d is %d: a hole in the stream", id, i, seq)
				break
			}
		}
	}
}
