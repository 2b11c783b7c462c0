package namespaces_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/roomcast/roomcast/namespaces"
)

// Message is what the chat example's clients send.
type Message struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// Handlers: a socket joins a room, then its messages go to the room's
// other members; Bind reads an argument into a Go type.
func Example() {
	srv := namespaces.New(namespaces.Config{})
	defer srv.Close()
	chat := srv.Of("/chat")
	chat.OnConnection(func(s *namespaces.Socket) {
		s.On("join", func(ev *namespaces.Event) {
			room, err := namespaces.Bind[string](ev, 0)
			if err != nil {
				_ = ev.Ack(map[string]any{"error": err.Error()})
				return
			}
			if err := s.Join(room); err != nil {
				_ = ev.Ack(map[string]any{"error": err.Error()})
				return
			}
			_ = ev.Ack(map[string]any{"ok": true})
		})
		s.On("say", func(ev *namespaces.Event) {
			msg, err := namespaces.Bind[Message](ev, 0)
			if err != nil {
				return
			}
			_ = s.To(msg.Room).Emit(context.Background(), "said", s.ID(), msg.Text)
		})
	})
}

// Server-wide connect middleware runs for every namespace, before the
// namespace's own; an error refuses the CONNECT with a connect_error.
func ExampleServer_Use() {
	srv := namespaces.New(namespaces.Config{})
	defer srv.Close()
	srv.Use(func(s *namespaces.Socket) error {
		token, _ := s.Handshake().Auth["token"].(string)
		if token == "" {
			return &namespaces.ConnectError{Message: "unauthorized", Data: map[string]any{"reason": "no token"}}
		}
		s.Set("token", token)
		return nil
	})
}

// An emit with ack to one socket, from a handler: the wait goes to its own
// goroutine (handlers must not block) and ends with the answer, the
// timeout, or the socket's disconnect (its Context ends too).
func ExampleSocket_Timeout() {
	srv := namespaces.New(namespaces.Config{})
	defer srv.Close()
	srv.Of("/").OnConnection(func(s *namespaces.Socket) {
		go func() {
			answer, err := s.Timeout(5*time.Second).EmitWithAck(s.Context(), "ready?")
			switch {
			case errors.Is(err, namespaces.ErrAckTimeout):
				log.Printf("%s did not answer", s.ID())
			case err != nil: // disconnected
			default:
				log.Printf("%s answered %v", s.ID(), answer)
			}
		}()
	})
}

// A broadcast with ack gathers one answer per recipient, on every node;
// with no recipient it returns at once.
func ExampleBroadcast_EmitWithAck() {
	srv := namespaces.New(namespaces.Config{})
	defer srv.Close()
	answers, err := srv.Of("/").To("voters").Timeout(time.Second).EmitWithAck(context.Background(), "vote")
	fmt.Println(len(answers), err)
	// Output: 0 <nil>
}

// Emits report what cannot be sent: a reserved event name, an argument
// encoding/json cannot marshal.
func ExampleBroadcast_Emit() {
	srv := namespaces.New(namespaces.Config{})
	defer srv.Close()
	ctx := context.Background()
	err := srv.Of("/").Emit(ctx, "disconnect")
	fmt.Println(errors.Is(err, namespaces.ErrEventName))
	err = srv.Of("/").To("news").Emit(ctx, "tick", func() {})
	fmt.Println(errors.Is(err, namespaces.ErrEncode))
	// Output:
	// true
	// true
}
