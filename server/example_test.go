package server_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/roomcast/roomcast/namespaces"
	"github.com/roomcast/roomcast/server"
)

// Embedding roomcast: register handlers, then emit from your own code to
// rooms, to a user's sockets, and with acks.
func Example() {
	srv, err := server.New(server.Config{Hub: server.HubConfig{}})
	if err != nil {
		panic(err)
	}
	srv.Of("/").OnConnection(func(s *namespaces.Socket) {
		s.Join("news")
		s.On("hello", func(ev *namespaces.Event) { ev.Ack("hi " + fmt.Sprint(ev.Args[0])) })
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)

	ctx := context.Background()
	// To everyone in "news" but the sockets in "muted".
	if err := srv.To("news").Except("muted").Emit(ctx, "headline", map[string]any{"title": "roomcast ships"}); err != nil {
		panic(err)
	}
	// To every socket of user 42 (room "user:42", joined on authentication).
	srv.ToUser("42").Emit(ctx, "notice", "you have mail")
	// With acks: wait up to a second for every recipient's answer.
	answers, err := srv.To("news").Timeout(time.Second).EmitWithAck(ctx, "poll", "ready?")
	fmt.Println(len(answers), err)

	shutdown, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	// Output: 0 <nil>
}
