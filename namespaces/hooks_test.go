package namespaces

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/roomcast/roomcast/clients"
)

// The socket lifecycle hooks report connects, disconnects with their
// reason, and the room changes this node makes (Socket.Join/Leave and
// Broadcast.Join/Leave), with the namespace and the socket id.
func TestSocketAndRoomHooks(t *testing.T) {
	var mu sync.Mutex
	var got []string
	rec := func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }
	srv := New(Config{Hooks: Hooks{
		SocketConnected:    func(s *Socket) { rec("connected " + s.Namespace().Name() + " " + s.ID()) },
		SocketDisconnected: func(s *Socket, r Reason) { rec("disconnected " + s.ID() + " " + r.String()) },
		RoomJoined:         func(nsp, room, sid string) { rec("joined " + nsp + " " + room + " " + sid) },
		RoomLeft:           func(nsp, room, sid string) { rec("left " + nsp + " " + room + " " + sid) },
	}})
	defer srv.Close()
	srv.Of("/chat")
	conn := newFakeConn()
	c := srv.NewClient(conn, nil)
	if err := c.Text([]byte("0/chat,")); err != nil {
		t.Fatal(err)
	}
	s := c.Sockets()[0]
	id := s.ID()
	if err := s.Join("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Leave("a"); err != nil {
		t.Fatal(err)
	}
	n := s.Namespace()
	n.To("b").Join("c")
	n.To("b").Leave("c")
	n.To("nobody-here").Join("d") // selects no local socket: nothing reported
	c.Close(clients.ReasonTransportClose)
	want := []string{
		"connected /chat " + id,
		"joined /chat a " + id, "joined /chat b " + id,
		"left /chat a " + id,
		"joined /chat c " + id,
		"left /chat c " + id,
		"disconnected " + id + " " + ReasonTransportClose.String(),
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("hooks saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
