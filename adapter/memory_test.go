package adapter

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	got map[string][]string
}

func (r *recorder) Disconnect(string, bool)               {}
func (r *recorder) Describe(id string) (SocketInfo, bool) { return SocketInfo{ID: id}, true }
func (r *recorder) ServerSideEmit([]any, func(any))       {}
func (r *recorder) NextAckID() int64                      { return 1 }

func (r *recorder) Deliver(id string, m *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]string{}
	}
	r.got[id] = append(r.got[id], m.Data[0].(string))
}

func TestMemoryBroadcastSelection(t *testing.T) {
	rec := &recorder{}
	m := NewMemory(rec, 0)
	defer m.Close()
	m.Join("a", "a", "r1", "r2")
	m.Join("b", "b", "r1")
	m.Join("c", "c", "r2")
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"all", Options{}, []string{"a", "b", "c"}},
		{"one room", Options{Rooms: []string{"r1"}}, []string{"a", "b"}},
		{"two rooms once each", Options{Rooms: []string{"r1", "r2"}}, []string{"a", "b", "c"}},
		{"except a room", Options{Rooms: []string{"r1", "r2"}, Except: []string{"r2"}}, []string{"b"}},
		{"except a socket", Options{Except: []string{"a"}}, []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.got = nil
			m.Broadcast(&Message{Type: 2, Data: []any{tt.name}}, tt.opts)
			var ids []string
			for id, evs := range rec.got {
				if len(evs) != 1 {
					t.Fatalf("%s got %d copies", id, len(evs))
				}
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("recipients %v, want %v", ids, tt.want)
			}
		})
	}
	m.LeaveAll("a")
	if r := m.Rooms("a"); len(r) != 0 {
		t.Fatalf("rooms after LeaveAll: %v", r)
	}
	m.Leave("b", "r1")
	if got := m.Sockets(Options{Rooms: []string{"r1"}}); len(got) != 0 {
		t.Fatalf("r1 still has %v", got)
	}
}

func TestMemoryRestoreSession(t *testing.T) {
	rec := &recorder{}
	m := NewMemory(rec, time.Minute)
	defer m.Close()
	m.Join("s1", "s1", "room")
	base := m.Offset()
	first := &Message{Type: 2, Data: []any{"e0"}}
	m.Broadcast(first, Options{Rooms: []string{"room"}})
	// s1 drops after receiving e0.
	m.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: m.Rooms("s1"), Base: base})
	m.LeaveAll("s1")
	for i := 1; i <= 5; i++ {
		m.Broadcast(&Message{Type: 2, Data: []any{fmt.Sprint("e", i)}}, Options{Rooms: []string{"room"}})
		m.Broadcast(&Message{Type: 2, Data: []any{"other"}}, Options{Rooms: []string{"elsewhere"}})
		m.Broadcast(&Message{Type: 2, Data: []any{"volatile"}}, Options{Rooms: []string{"room"}, Volatile: true})
	}
	var attached *Session
	s := m.RestoreSession("p1", first.Offset, func(s *Session) { attached = s })
	if s == nil || attached == nil || s.ID != "s1" {
		t.Fatalf("session not restored: %+v", s)
	}
	var missed []string
	for _, msg := range s.Missed {
		missed = append(missed, msg.Data[0].(string))
	}
	if want := []string{"e1", "e2", "e3", "e4", "e5"}; !slices.Equal(missed, want) {
		t.Fatalf("missed %v, want %v", missed, want)
	}
	if !slices.Contains(m.Rooms("s1"), "room") {
		t.Fatal("restored socket did not rejoin its rooms")
	}
	if m.RestoreSession("p1", first.Offset, func(*Session) {}) != nil {
		t.Fatal("a session was restored twice")
	}
}

func TestMemoryRestoreWithoutOffsetAndExpiry(t *testing.T) {
	// A window no step of the test can outlast on a loaded machine; expiry
	// is tested on an adapter of its own below, and aging by m.expire.
	m := NewMemory(&recorder{}, time.Hour)
	defer m.Close()
	m.Join("s", "s", "room")
	base := m.Offset()
	m.SaveSession(&Session{ID: "s", PID: "p", Rooms: []string{"s", "room"}, Base: base})
	m.LeaveAll("s")
	m.Broadcast(&Message{Type: 2, Data: []any{"x"}}, Options{Rooms: []string{"room"}})
	s := m.RestoreSession("p", "", func(*Session) {})
	if s == nil || len(s.Missed) != 1 {
		t.Fatalf("a client that received nothing must get everything since it connected: %+v", s)
	}
	short := NewMemory(&recorder{}, 50*time.Millisecond)
	defer short.Close()
	short.SaveSession(&Session{ID: "s", PID: "p2", Rooms: []string{"s"}, Base: short.Offset()})
	time.Sleep(80 * time.Millisecond) // past the window: a timer never fires early
	if short.RestoreSession("p2", "", func(*Session) {}) != nil {
		t.Fatal("an expired session was restored")
	}
	// An offset that aged out of the history still restores: what came
	// after it and is retained is replayed.
	m.Join("s3", "s3", "room")
	m.Broadcast(&Message{Type: 2, Data: []any{"old"}}, Options{Rooms: []string{"room"}})
	old := m.Offset()
	m.expire(time.Now().Add(2 * time.Hour)) // everything ages out
	m.SaveSession(&Session{ID: "s3", PID: "p3", Rooms: []string{"s3", "room"}, Base: base})
	m.LeaveAll("s3")
	m.Broadcast(&Message{Type: 2, Data: []any{"new"}}, Options{Rooms: []string{"room"}})
	s = m.RestoreSession("p3", old, func(*Session) {})
	if s == nil || len(s.Missed) != 1 || s.Missed[0].Data[0] != "new" {
		t.Fatalf("aged-out offset: %+v", s)
	}
	m.SaveSession(&Session{ID: "s3", PID: "p4", Rooms: []string{"s3", "room"}, Base: base})
	if m.RestoreSession("p4", "zzzz", func(*Session) {}) != nil {
		t.Fatal("restored from an offset this adapter never issued")
	}
	if m.RestoreSession("unknown", "1", func(*Session) {}) != nil {
		t.Fatal("an unknown session was restored")
	}
}

// Past MaxHistory the oldest broadcasts go; a client whose offset went that
// way is not recovered (its missed messages cannot all be replayed), one
// with a newer offset is.
func TestMemoryHistoryCap(t *testing.T) {
	m := NewMemory(&recorder{}, time.Hour)
	defer m.Close()
	m.Join("s", "s", "room")
	first := &Message{Type: 2, Data: []any{"first"}}
	m.Broadcast(first, Options{Rooms: []string{"other"}})
	for i := 0; i < MaxHistory; i++ {
		m.Broadcast(&Message{Type: 2, Data: []any{"x"}}, Options{Rooms: []string{"other"}})
	}
	recent := &Message{Type: 2, Data: []any{"recent"}}
	m.Broadcast(recent, Options{Rooms: []string{"room"}})
	m.Broadcast(&Message{Type: 2, Data: []any{"missed"}}, Options{Rooms: []string{"room"}})
	if len(m.history) > MaxHistory {
		t.Fatalf("history holds %d", len(m.history))
	}
	m.SaveSession(&Session{ID: "s", PID: "old", Rooms: []string{"s", "room"}})
	if m.RestoreSession("old", first.Offset, func(*Session) {}) != nil {
		t.Fatal("restored from an offset dropped by the cap")
	}
	m.SaveSession(&Session{ID: "s", PID: "new", Rooms: []string{"s", "room"}})
	s := m.RestoreSession("new", recent.Offset, func(*Session) {})
	if s == nil || len(s.Missed) != 1 || s.Missed[0].Data[0] != "missed" {
		t.Fatalf("recent offset: %+v", s)
	}
}
