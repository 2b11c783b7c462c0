package adapter

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A saved session keeps its rooms rooms of this node (HasRoom) and of the
// backplane's subscriptions (onRoom) until it is restored or expires, so
// broadcasts from other nodes to those rooms are still heard and stored.
func TestSessionHoldsItsRooms(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	m := newMemory(&recorder{}, time.Minute, clock.now)
	defer m.Close()
	var events []string
	m.onRoom = func(room string, created, public bool) {
		events = append(events, fmt.Sprintf("%s created=%v public=%v", room, created, public))
	}
	m.Join("s1", "s1", "room")
	events = nil

	m.SaveSession(&Session{ID: "s1", PID: "p1", Rooms: m.Rooms("s1"), Base: m.Offset()})
	m.LeaveAll("s1")
	if !m.HasRoom("room") || !m.HasRoom("s1") {
		t.Fatal("the rooms of a saved session are no longer rooms of the node")
	}
	if len(events) != 0 {
		t.Fatalf("leaving while a session holds the rooms: %v", events)
	}
	s := m.RestoreSession("p1", "", func(*Session) {})
	if s == nil || !slices.Contains(m.Rooms("s1"), "room") {
		t.Fatalf("not restored into its rooms: %+v", s)
	}
	if len(events) != 0 || len(m.held) != 0 {
		t.Fatalf("restore: events %v, held %v", events, m.held)
	}

	// Dropped again; this time the session expires: the rooms go, the
	// socket's own room as a private one.
	m.SaveSession(&Session{ID: "s1", PID: "p2", Rooms: m.Rooms("s1")})
	m.LeaveAll("s1")
	clock.advance(time.Minute + time.Second)
	m.expire(clock.now())
	if m.HasRoom("room") || m.HasRoom("s1") || len(m.held) != 0 {
		t.Fatalf("expired session still holds rooms: %v", m.held)
	}
	slices.Sort(events)
	want := []string{"room created=false public=true", "s1 created=false public=false"}
	if !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
}

// A session handed back to SaveSession after a refused connection keeps
// its end of window, and restores with what it missed meanwhile.
func TestSessionPutBack(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	m := newMemory(&recorder{}, time.Minute, clock.now)
	defer m.Close()
	m.Join("s", "s", "room")
	first := &Message{Type: 2, Data: []any{"first"}}
	m.Broadcast(first, Options{Rooms: []string{"room"}})
	m.SaveSession(&Session{ID: "s", PID: "p", Rooms: m.Rooms("s")})
	m.LeaveAll("s")
	m.Broadcast(&Message{Type: 2, Data: []any{"a"}}, Options{Rooms: []string{"room"}})
	clock.advance(30 * time.Second)

	s := m.RestoreSession("p", first.Offset, func(*Session) {})
	if s == nil || len(s.Missed) != 1 {
		t.Fatalf("first attempt: %+v", s)
	}
	// Refused by the middleware: back it goes, before the socket leaves.
	m.SaveSession(s)
	m.LeaveAll("s")
	m.Broadcast(&Message{Type: 2, Data: []any{"b"}}, Options{Rooms: []string{"room"}})
	s2 := m.RestoreSession("p", first.Offset, func(*Session) {})
	if s2 == nil {
		t.Fatal("the put-back session is gone")
	}
	var got []any
	for _, msg := range s2.Missed {
		got = append(got, msg.Data[0])
	}
	if !slices.Equal(got, []any{"a", "b"}) {
		t.Fatalf("missed %v, want [a b]", got)
	}
	// Its window did not restart: put back once more, it expires 60 s
	// after the first drop.
	m.SaveSession(s2)
	m.LeaveAll("s")
	clock.advance(31 * time.Second)
	if m.RestoreSession("p", first.Offset, func(*Session) {}) != nil {
		t.Fatal("a put-back session outlived its window")
	}
}
