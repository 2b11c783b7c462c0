package adapter

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fill broadcasts n messages of size bytes each to room, holding no
// reference to them afterwards.
func fill(m *Memory, room string, n, size int) {
	for i := 0; i < n; i++ {
		m.Broadcast(&Message{Type: 2, Data: []any{"m", strings.Repeat("x", size)}}, Options{Rooms: []string{room}})
	}
}

// The history holds at most its byte bound whatever the count; an offset
// dropped by the bound does not recover, a retained one does.
func TestHistoryBytesBound(t *testing.T) {
	const limit = 1 << 20
	m := NewMemory(&recorder{}, time.Hour)
	defer m.Close()
	m.SetMaxHistoryBytes(limit)
	m.Join("s", "s", "room")
	first := &Message{Type: 2, Data: []any{"first"}}
	m.Broadcast(first, Options{Rooms: []string{"room"}})
	m.SaveSession(&Session{ID: "s", PID: "old", Rooms: []string{"s", "room"}})
	m.SaveSession(&Session{ID: "s", PID: "base", Rooms: []string{"s", "room"}, Base: first.Offset})
	for i := 0; i < 200; i++ {
		fill(m, "room", 1, 50_000)
		if b := m.HistoryBytes(); b > limit {
			t.Fatalf("after %d broadcasts of 50 kB the history holds %d bytes, bound %d", i+1, b, limit)
		}
	}
	if n := m.HistoryLen(); n == 0 || n >= 200 {
		t.Fatalf("history holds %d broadcasts, want some but not all", n)
	}
	if m.RestoreSession("old", first.Offset, func(*Session) {}) != nil {
		t.Fatal("restored from an offset dropped by the byte bound")
	}
	if m.RestoreSession("base", "", func(*Session) {}) != nil {
		t.Fatal("restored a session without offset whose missed messages were dropped by the byte bound")
	}
	recent := &Message{Type: 2, Data: []any{"recent"}}
	m.Broadcast(recent, Options{Rooms: []string{"room"}})
	m.Broadcast(&Message{Type: 2, Data: []any{"missed"}}, Options{Rooms: []string{"room"}})
	m.SaveSession(&Session{ID: "s", PID: "new", Rooms: []string{"s", "room"}})
	s := m.RestoreSession("new", recent.Offset, func(*Session) {})
	if s == nil || len(s.Missed) != 1 || s.Missed[0].Data[0] != "missed" {
		t.Fatalf("recent offset: %+v", s)
	}

	// One message larger than the whole bound is not kept either.
	fill(m, "room", 1, 2*limit)
	if b := m.HistoryBytes(); b > limit {
		t.Fatalf("a %d-byte message: history holds %d bytes, bound %d", 2*limit, b, limit)
	}
}

// Zero means the documented default, negative no byte bound.
func TestHistoryBytesBoundSetting(t *testing.T) {
	m := NewMemory(&recorder{}, time.Hour)
	defer m.Close()
	if m.maxBytes != DefaultMaxHistoryBytes {
		t.Fatalf("new adapter bound %d, want DefaultMaxHistoryBytes", m.maxBytes)
	}
	m.SetMaxHistoryBytes(-1)
	fill(m, "room", 3, 1<<20)
	if m.HistoryLen() != 3 {
		t.Fatalf("negative bound: %d kept, want 3", m.HistoryLen())
	}
	m.SetMaxHistoryBytes(0)
	if m.maxBytes != DefaultMaxHistoryBytes {
		t.Fatalf("bound after 0: %d, want DefaultMaxHistoryBytes", m.maxBytes)
	}
}

// The case, scaled down: big broadcasts to an empty room, then
// nothing. When they expire, the history lets them go at once (no new
// broadcast needed): its accounting drops to zero and so does the heap.
func TestHistoryReleasedOnExpiry(t *testing.T) {
	const n, size = 40, 1 << 20
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	m := newMemory(&recorder{}, 2*time.Minute, clock.now)
	defer m.Close()
	before := heapAlloc()
	fill(m, "empty", n, size)
	if b := m.HistoryBytes(); b < n*size {
		t.Fatalf("history accounts %d bytes for %d x %d", b, n, size)
	}
	full := heapAlloc()
	if full < before+n*size*9/10 {
		t.Fatalf("heap %d → %d: the messages are not held?", before, full)
	}
	clock.advance(2*time.Minute + time.Second)
	m.expire(clock.now())
	if b, l := m.HistoryBytes(), m.HistoryLen(); b != 0 || l != 0 {
		t.Fatalf("after expiry the history holds %d broadcasts, %d bytes", l, b)
	}
	after := heapAlloc()
	if after > before+n*size/10 {
		t.Fatalf("heap after expiry %d MiB, before the broadcasts %d MiB, with them %d MiB: the expired messages are still referenced",
			after>>20, before>>20, full>>20)
	}
	t.Logf("heap: %d MiB before, %d MiB with %d x 1 MiB held, %d MiB after expiry", before>>20, full>>20, n, after>>20)
}

// The adapter's own sweep expires the history, with no broadcast after.
func TestHistorySweepReleases(t *testing.T) {
	m := NewMemory(&recorder{}, 20*time.Millisecond)
	defer m.Close()
	fill(m, "empty", 5, 100_000)
	if m.HistoryBytes() == 0 {
		t.Fatal("nothing stored")
	}
	deadline := time.Now().Add(10 * time.Second) // safety net only
	for m.HistoryBytes() != 0 || m.HistoryLen() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweep left %d broadcasts, %d bytes", m.HistoryLen(), m.HistoryBytes())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A message sent just before the socket dropped may still have been in its
// send queue: if it ages out of the history while the socket is away, the
// socket cannot be recovered exactly, so it is refused (a fresh session)
// rather than replayed with a hole. An offset that aged out before the
// socket dropped still recovers.
func TestAgedOutWhileAwayRefuses(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	m := NewMemory(&recorder{}, time.Minute)
	defer m.Close()
	m.now = func() time.Time { return now }
	m.Join("s", "s", "room")
	first := &Message{Type: 2, Data: []any{"first"}}
	m.Broadcast(first, Options{Rooms: []string{"room"}})
	now = now.Add(20 * time.Second)
	m.Broadcast(&Message{Type: 2, Data: []any{"queued when it dropped"}}, Options{Rooms: []string{"room"}})
	// 10 s later the socket drops having received only "first"; the
	// session is kept for a minute.
	now = now.Add(10 * time.Second)
	m.SaveSession(&Session{ID: "s", PID: "p", Rooms: []string{"s", "room"}})
	m.LeaveAll("s")
	// 55 s later both broadcasts are older than the window and go; the
	// session has 5 s left.
	now = now.Add(55 * time.Second)
	m.expire(now)
	if m.HistoryLen() != 0 {
		t.Fatalf("history holds %d after expiry", m.HistoryLen())
	}
	m.Broadcast(&Message{Type: 2, Data: []any{"later"}}, Options{Rooms: []string{"room"}})
	if s := m.RestoreSession("p", first.Offset, func(*Session) {}); s != nil {
		t.Fatalf("restored with a hole: missed %v", s.Missed)
	}

	// Aged out before the drop: everything after it was written while the
	// socket stayed connected for a whole window, so the retained rest is
	// the complete replay.
	m.Join("t", "t", "room")
	old := &Message{Type: 2, Data: []any{"old"}}
	m.Broadcast(old, Options{Rooms: []string{"room"}})
	now = now.Add(2 * time.Minute)
	m.expire(now)
	m.SaveSession(&Session{ID: "t", PID: "q", Rooms: []string{"t", "room"}})
	m.LeaveAll("t")
	m.Broadcast(&Message{Type: 2, Data: []any{"new"}}, Options{Rooms: []string{"room"}})
	s := m.RestoreSession("q", old.Offset, func(*Session) {})
	if s == nil || len(s.Missed) != 1 || s.Missed[0].Data[0] != "new" {
		t.Fatalf("offset aged out before the drop: %+v", s)
	}
}
