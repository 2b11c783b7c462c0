package server_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/server"
)

// Embedding roomcast: handlers written with this package alone, a server
// on a listener of your own, then a client (here raw WebSocket frames, as a
// socket.io client sends them) that connects and calls "hello" with an ack.
func Example() {
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	srv.Of("/").OnConnection(func(s *server.Socket) {
		_ = s.Join("news")
		s.On("hello", func(ev *server.Event) {
			name, err := server.Bind[string](ev, 0)
			if err != nil {
				_ = ev.Ack(map[string]any{"error": err.Error()})
				return
			}
			_ = ev.Ack("hi " + name)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		panic(err)
	}
	defer ws.Close()
	read := func() string { _, b, _ := ws.ReadMessage(); return string(b) }
	read()                                                               // Engine.IO open
	ws.WriteMessage(websocket.TextMessage, []byte(`40`))                 // CONNECT to "/"
	read()                                                               // its answer, 40{"sid":...}
	ws.WriteMessage(websocket.TextMessage, []byte(`421["hello","ann"]`)) // EVENT with ack id 1
	fmt.Println(read())
	// Output: 431["hi ann"]
}

// Emitting from Go code: to rooms, to a user's sockets, and with acks.
func ExampleServer_To() {
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	// To everyone in "news" but the sockets in "muted".
	err = srv.To("news").Except("muted").Emit(ctx, "headline", map[string]any{"title": "roomcast ships"})
	fmt.Println(err)
	// To every socket of user 42 (room "user:42", joined on authentication).
	_ = srv.ToUser("42").Emit(ctx, "notice", "you have mail")
	// With acks: wait up to a second for every recipient's answer.
	answers, err := srv.To("news").Timeout(time.Second).EmitWithAck(ctx, "poll", "ready?")
	fmt.Println(len(answers), err)
	// Output:
	// <nil>
	// 0 <nil>
}

// The zero Config is the reference server's defaults; `roomcast serve`
// turns on connection state recovery and the built-in hub protocol, and
// authenticates every namespace when given a JWT key.
func ExampleConfig() {
	jwt, err := server.NewJWT([]byte("secret"), nil)
	if err != nil {
		panic(err)
	}
	cfg := server.Config{
		RecoveryWindow: server.DefaultRecoveryWindow,
		Hub:            server.HubConfig{Enabled: true},
		Auth:           jwt,
		ConnectTimeout: 10 * time.Second,
	}
	srv, err := server.New(cfg)
	fmt.Println(err)
	srv.Shutdown(context.Background())
	// Output: <nil>
}
