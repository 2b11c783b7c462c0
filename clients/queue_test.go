package clients

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func pkt(kind Kind, s string) *Packet { return Text(kind, []byte(s)) }

func keyed(key, s string) *Packet {
	p := pkt(Droppable, s)
	p.Key = key
	return p
}

func drain(q *Queue) []string {
	var out []string
	for _, e := range q.Take(nil) {
		out = append(out, string(e.Packet.Frames[0].Data))
	}
	return out
}

func TestQueueBoundsAndPolicies(t *testing.T) {
	tests := []struct {
		name   string
		cfg    QueueConfig
		push   []*Packet
		want   []PushResult
		queued []string
	}{
		{
			name:   "disconnect when packets bound is hit",
			cfg:    QueueConfig{MaxPackets: 2, MaxBytes: -1, Policy: Disconnect},
			push:   []*Packet{pkt(Droppable, "a"), pkt(Droppable, "b"), pkt(Droppable, "c")},
			want:   []PushResult{Queued, Queued, Full},
			queued: []string{"a", "b"},
		},
		{
			name:   "disconnect when bytes bound is hit",
			cfg:    QueueConfig{MaxPackets: -1, MaxBytes: 6, Policy: Disconnect}, // "a" counts 1+2 header bytes, "bb" 2+2
			push:   []*Packet{pkt(Droppable, "a"), pkt(Droppable, "bb")},
			want:   []PushResult{Queued, Full},
			queued: []string{"a"},
		},
		{
			name:   "control packets pass a full queue",
			cfg:    QueueConfig{MaxPackets: 1, MaxBytes: -1, Policy: Disconnect},
			push:   []*Packet{pkt(Droppable, "a"), pkt(Control, "ack")},
			want:   []PushResult{Queued, Queued},
			queued: []string{"a", "ack"},
		},
		{
			name:   "drop-oldest keeps the newest",
			cfg:    QueueConfig{MaxPackets: 2, MaxBytes: -1, Policy: DropOldest},
			push:   []*Packet{pkt(Droppable, "1"), pkt(Droppable, "2"), pkt(Droppable, "3"), pkt(Droppable, "4")},
			want:   []PushResult{Queued, Queued, Dropped, Dropped},
			queued: []string{"3", "4"},
		},
		{
			name:   "drop-oldest never drops control packets",
			cfg:    QueueConfig{MaxPackets: 3, MaxBytes: -1, Policy: DropOldest},
			push:   []*Packet{pkt(Control, "c1"), pkt(Droppable, "1"), pkt(Control, "c2"), pkt(Droppable, "2"), pkt(Droppable, "3")},
			want:   []PushResult{Queued, Queued, Queued, Dropped, Dropped},
			queued: []string{"c1", "c2", "3"},
		},
		{
			name:   "coalesce replaces in place when full",
			cfg:    QueueConfig{MaxPackets: 2, MaxBytes: -1, Policy: Coalesce},
			push:   []*Packet{keyed("A", "A1"), keyed("B", "B1"), keyed("A", "A2")},
			want:   []PushResult{Queued, Queued, Replaced},
			queued: []string{"A2", "B1"},
		},
		{
			name:   "coalesce keeps both while there is room",
			cfg:    QueueConfig{MaxPackets: 10, MaxBytes: -1, Policy: Coalesce},
			push:   []*Packet{keyed("A", "A1"), keyed("A", "A2")},
			want:   []PushResult{Queued, Queued},
			queued: []string{"A1", "A2"},
		},
		{
			name:   "coalesce without a match drops the oldest when full",
			cfg:    QueueConfig{MaxPackets: 2, MaxBytes: -1, Policy: Coalesce},
			push:   []*Packet{keyed("A", "A1"), keyed("B", "B1"), keyed("C", "C1"), keyed("A", "A2")},
			want:   []PushResult{Queued, Queued, Dropped, Dropped},
			queued: []string{"C1", "A2"}, // C1 evicted A1, so A2 has nothing to replace and evicts B1
		},
		{
			name:   "volatile dropped when queue not empty",
			cfg:    QueueConfig{},
			push:   []*Packet{pkt(Volatile, "v1"), pkt(Volatile, "v2")},
			want:   []PushResult{Queued, Dropped},
			queued: []string{"v1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(tt.cfg, nil, Stats{})
			for i, p := range tt.push {
				if got := q.Push(p); got != tt.want[i] {
					t.Fatalf("push %d: got %v, want %v", i, got, tt.want[i])
				}
			}
			if got := drain(q); strings.Join(got, ",") != strings.Join(tt.queued, ",") {
				t.Fatalf("queued %v, want %v", got, tt.queued)
			}
		})
	}
}

func TestQueueWakesOneWriter(t *testing.T) {
	var wakes int
	q := NewQueue(QueueConfig{}, func() { wakes++ }, Stats{})
	q.Push(pkt(Droppable, "a"))
	q.Push(pkt(Droppable, "b"))
	if wakes != 1 {
		t.Fatalf("wakes = %d after two pushes to an idle queue, want 1", wakes)
	}
	if got := q.Take(nil); len(got) != 2 {
		t.Fatalf("took %d, want 2", len(got))
	}
	q.Push(pkt(Droppable, "c")) // the writer has not seen an empty queue yet
	if wakes != 1 {
		t.Fatalf("woke a second writer while one is active")
	}
	q.Take(nil)
	if got := q.Take(nil); len(got) != 0 { // empty: the writer stops
		t.Fatalf("want empty")
	}
	q.Push(pkt(Droppable, "d"))
	if wakes != 2 {
		t.Fatalf("wakes = %d, want 2 after the writer stopped", wakes)
	}
}

func TestQueueCloseReportsWriter(t *testing.T) {
	q := NewQueue(QueueConfig{}, func() {}, Stats{})
	if q.Close() {
		t.Fatal("idle queue reported an active writer")
	}
	if q.Push(pkt(Droppable, "a")) != Closed {
		t.Fatal("push after close was accepted")
	}
	q2 := NewQueue(QueueConfig{}, func() {}, Stats{})
	q2.Push(pkt(Droppable, "a"))
	if !q2.Close() {
		t.Fatal("queue with a woken writer reported none")
	}
}

// A slow reader of a coalescing queue sees, per key, values that never go
// backwards and ends with the latest of each key.
func TestQueueCoalesceNeverGoesBackwards(t *testing.T) {
	var coalesced int
	// The bound holds one packet per key, so coalescing alone keeps it.
	q := NewQueue(QueueConfig{MaxPackets: 100, MaxBytes: -1, Policy: Coalesce}, func() {}, Stats{Coalesced: func() { coalesced++ }})
	last := map[string]int{}
	seen := map[string]int{}
	check := func() {
		for _, e := range q.Take(nil) {
			var k string
			var v int
			fmt.Sscanf(string(e.Packet.Frames[0].Data), "%s %d", &k, &v)
			if v < seen[k] {
				t.Fatalf("key %s went back from %d to %d", k, seen[k], v)
			}
			seen[k] = v
		}
	}
	for i := 0; i < 10000; i++ {
		k := fmt.Sprintf("k%02d", i%100)
		last[k] = i
		q.Push(keyed(k, fmt.Sprintf("%s %d", k, i)))
		if i%997 == 0 {
			check()
		}
	}
	check()
	for k, v := range last {
		if seen[k] != v {
			t.Fatalf("key %s ended at %d, want %d", k, seen[k], v)
		}
	}
	if coalesced == 0 {
		t.Fatal("nothing was coalesced")
	}
}

func TestQueueConcurrentPushTake(t *testing.T) {
	q := NewQueue(QueueConfig{MaxPackets: -1, MaxBytes: -1}, func() {}, Stats{})
	var wg sync.WaitGroup
	const producers, each = 4, 2000
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				q.Push(pkt(Droppable, "x"))
			}
		}()
	}
	got := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		got += len(q.Take(nil))
		select {
		case <-done:
			got += len(q.Take(nil))
			if got != producers*each {
				t.Fatalf("took %d, want %d", got, producers*each)
			}
			return
		default:
		}
	}
}
