package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/clients"
)

// Connect middleware runs on the restored socket (its recovered id and data,
// Recovered() true), as in the reference server; when it refuses, the
// session survives and a later CONNECT recovers everything, what was sent
// during the refused attempt included; the refused attempt gets nothing but
// its CONNECT_ERROR.
func TestRefusedRecoveryKeepsTheSession(t *testing.T) {
	srv := New(Config{RecoveryWindow: time.Minute})
	defer srv.Close()
	type seen struct {
		id        string
		recovered bool
		data      any
	}
	var calls []seen
	srv.Of("/").Use(func(s *Socket) error {
		who, _ := s.Get("who")
		calls = append(calls, seen{s.ID(), s.Recovered(), who})
		if s.Handshake().Auth["token"] != "good" {
			s.Set("who", "refused") // must not reach the kept session
			return errors.New("unauthorized")
		}
		return nil
	})
	srv.Of("/").OnConnection(func(s *Socket) {
		if !s.Recovered() {
			s.Set("who", "dana")
			s.Join("room")
		}
	})
	emit := func(i int) { srv.Of("/").To("room").Emit(context.Background(), "m", i) }

	p, ack := connectPeer(t, srv, "/", `{"token":"good"}`)
	var first struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack[1:]), &first)
	emit(0)
	var args []any
	json.Unmarshal([]byte(p.conn.texts()[0][1:]), &args)
	offset := args[len(args)-1].(string)
	p.c.Close(clients.ReasonTransportClose)
	emit(1)

	auth := func(token string) string {
		return fmt.Sprintf(`{"token":%q,"pid":%q,"offset":%q}`, token, first.Pid, offset)
	}
	bad, ack := connectPeer(t, srv, "/", auth("expired"))
	if !strings.HasPrefix(ack, "4") || len(bad.rest) != 0 {
		t.Fatalf("refused attempt got %q then %v", ack, bad.rest)
	}
	emit(2)
	q, ack := connectPeer(t, srv, "/", auth("good"))
	var second struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack[1:]), &second)
	if second.Sid != first.Sid {
		t.Fatalf("not recovered after a refused attempt: %q", ack)
	}
	if len(q.rest) != 2 || !strings.HasPrefix(q.rest[0], `2["m",1,`) || !strings.HasPrefix(q.rest[1], `2["m",2,`) {
		t.Fatalf("missed %v, want m 1 and m 2", q.rest)
	}
	want := []seen{{first.Sid, false, nil}, {first.Sid, true, "dana"}, {first.Sid, true, "dana"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("middleware saw %v, want %v", calls, want)
	}
}

// A connection that closes while its socket is being recovered (in the
// client's map, its CONNECT not yet answered) puts the session back: the
// next attempt recovers it, with what was sent meanwhile.
func TestCloseWhileRecoveringKeepsTheSession(t *testing.T) {
	srv := New(Config{RecoveryWindow: time.Minute})
	defer srv.Close()
	srv.Of("/").OnConnection(func(s *Socket) {
		if !s.Recovered() {
			s.Join("room")
		}
	})
	emit := func(i int) { srv.Of("/").To("room").Emit(context.Background(), "m", i) }

	p, ack := connectPeer(t, srv, "/", `{}`)
	var first struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack[1:]), &first)
	emit(0)
	var args []any
	json.Unmarshal([]byte(p.conn.texts()[0][1:]), &args)
	offset := args[len(args)-1].(string)
	p.c.Close(clients.ReasonTransportClose)
	emit(1)

	auth := fmt.Sprintf(`{"pid":%q,"offset":%q}`, first.Pid, offset)
	testHookConnecting = func(c *Client) { c.Close(clients.ReasonTransportClose) }
	connectPeer(t, srv, "/", auth)
	testHookConnecting = nil
	emit(2)
	q, ack := connectPeer(t, srv, "/", auth)
	var second struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack[1:]), &second)
	if second.Sid != first.Sid {
		t.Fatalf("not recovered after a connection closed while recovering: %q", ack)
	}
	if len(q.rest) != 2 || !strings.HasPrefix(q.rest[0], `2["m",1,`) || !strings.HasPrefix(q.rest[1], `2["m",2,`) {
		t.Fatalf("missed %v, want m 1 and m 2", q.rest)
	}
}
