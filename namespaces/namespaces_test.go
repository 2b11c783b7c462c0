package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/clients"
)

// fakeConn is a connection whose writer is the test: it takes what the
// socket layer queued.
type fakeConn struct {
	id     string
	q      *clients.Queue
	mu     sync.Mutex
	reason clients.Reason
}

func newFakeConn() *fakeConn {
	return &fakeConn{id: clients.NewID(), q: clients.NewQueue(clients.QueueConfig{MaxPackets: -1, MaxBytes: -1}, nil, clients.Stats{})}
}

func (f *fakeConn) ID() string             { return f.id }
func (f *fakeConn) Send(p *clients.Packet) { f.q.Push(p) }
func (f *fakeConn) Transport() string      { return "websocket" }
func (f *fakeConn) Close(r clients.Reason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == clients.ReasonNone {
		f.reason = r
	}
}

// texts drains the queued text frames (without the Engine.IO "4").
func (f *fakeConn) texts() []string {
	var out []string
	for _, e := range f.q.Take(nil) {
		for _, fr := range e.Packet.Frames {
			if !fr.Binary {
				out = append(out, string(fr.Data[1:]))
			}
		}
	}
	return out
}

type peer struct {
	t    testing.TB
	conn *fakeConn
	c    *Client
	rest []string // what followed the CONNECT answer
}

func connectPeer(t testing.TB, srv *Server, nsp, auth string) (*peer, string) {
	t.Helper()
	p := &peer{t: t, conn: newFakeConn()}
	p.c = srv.NewClient(p.conn, nil)
	pkt := "0"
	if nsp != "/" {
		pkt += nsp + ","
	}
	p.send(pkt + auth)
	got := p.conn.texts()
	if len(got) == 0 {
		t.Fatalf("no answer to CONNECT")
	}
	p.rest = got[1:]
	return p, got[0]
}

func (p *peer) send(s string) {
	p.t.Helper()
	if err := p.c.Text([]byte(s)); err != nil {
		p.t.Fatalf("Text(%q): %v", s, err)
	}
}

func TestConnectAndOrderedEvents(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1})
	defer srv.Close()
	var got []float64
	var auth map[string]any
	srv.Of("/").OnConnection(func(s *Socket) {
		auth = s.Handshake().Auth
		s.On("n", func(ev *Event) { got = append(got, ev.Args[0].(float64)) })
		s.On("add", func(ev *Event) { ev.Ack(ev.Args[0].(float64) + ev.Args[1].(float64)) })
	})
	p, ack := connectPeer(t, srv, "/", "")
	if !strings.HasPrefix(ack, `0{"sid":"`) || strings.Contains(ack, "pid") {
		t.Fatalf("CONNECT answer %q", ack)
	}
	if auth == nil || len(auth) != 0 {
		t.Fatalf("absent auth must be {}, got %#v", auth)
	}
	for i := 0; i < 100; i++ {
		p.send(fmt.Sprintf(`2["n",%d]`, i))
	}
	for i, v := range got {
		if int(v) != i {
			t.Fatalf("event %d handled as %v", i, v)
		}
	}
	p.send(`27["add",2,3]`)
	if out := p.conn.texts(); len(out) != 1 || out[0] != "37[5]" {
		t.Fatalf("ack %v", out)
	}
}

func TestConnectErrors(t *testing.T) {
	srv := New(Config{RecoveryWindow: DefaultRecoveryWindow})
	defer srv.Close()
	srv.Of("/private").Use(func(s *Socket) error {
		if s.Handshake().Auth["token"] != "ok" {
			return &ConnectError{Message: "unauthorized", Data: map[string]any{"code": 7}}
		}
		return nil
	})
	if _, ack := connectPeer(t, srv, "/nope", ""); ack != `4/nope,{"message":"Invalid namespace"}` {
		t.Fatalf("unknown namespace: %q", ack)
	}
	if _, ack := connectPeer(t, srv, "/private", `{"token":"bad"}`); ack != `4/private,{"data":{"code":7},"message":"unauthorized"}` {
		t.Fatalf("refused: %q", ack)
	}
	if srv.Of("/private").Len() != 0 {
		t.Fatal("a refused socket stayed registered")
	}
	if _, ack := connectPeer(t, srv, "/private", `{"token":"ok"}`); !strings.HasPrefix(ack, `0/private,{"pid":`) {
		t.Fatalf("accepted: %q", ack)
	}
}

func TestDynamicNamespace(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	var created []string
	srv.OfPattern(mustRe(`^/tenant-[a-z0-9]+$`), func(n *Namespace) { created = append(created, n.Name()) })
	if _, ack := connectPeer(t, srv, "/tenant-a1", ""); !strings.HasPrefix(ack, "0/tenant-a1,") {
		t.Fatalf("dynamic: %q", ack)
	}
	connectPeer(t, srv, "/tenant-a1", "")
	if _, ack := connectPeer(t, srv, "/tenant-A", ""); !strings.HasPrefix(ack, "4/tenant-A,") {
		t.Fatalf("non-matching: %q", ack)
	}
	if len(created) != 1 {
		t.Fatalf("setup ran %d times, want once", len(created))
	}
}

func TestEmitWithAckTimeoutAndLateAck(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1})
	defer srv.Close()
	sockets := make(chan *Socket, 1)
	srv.Of("/").OnConnection(func(s *Socket) { sockets <- s })
	p, _ := connectPeer(t, srv, "/", "")
	s := <-sockets
	start := time.Now()
	_, err := s.Timeout(100*time.Millisecond).EmitWithAck(context.Background(), "q", 1)
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("want timeout, got %v", err)
	}
	// Only the lower bound is the timer's promise; how late it fires
	// depends on the machine's load.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("timed out after %v, before the 100ms timeout", el)
	}
	out := p.conn.texts()
	if len(out) != 1 || !strings.HasPrefix(out[0], `20["q",1]`) {
		t.Fatalf("emitted %v", out)
	}
	p.send(`30["late"]`) // ignored, no panic, no leak
	if n := s.acks.Len(); n != 0 {
		t.Fatalf("%d acks pending", n)
	}
	// Answered in time.
	done := make(chan []any, 1)
	if err := s.EmitWithAckFunc(context.Background(), func(args []any, err error) { done <- args }, "q", 2); err != nil {
		t.Fatal(err)
	}
	out = p.conn.texts()
	id := strings.TrimSuffix(strings.TrimPrefix(out[0], "2"), `["q",2]`)
	p.send("3" + id + `["yes"]`)
	if args := <-done; args[0] != "yes" {
		t.Fatalf("ack args %v", args)
	}
}

func TestBroadcastWithAcks(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1})
	defer srv.Close()
	var peers []*peer
	for i := 0; i < 3; i++ {
		p, _ := connectPeer(t, srv, "/", "")
		peers = append(peers, p)
	}
	res := make(chan []any, 1)
	go func() {
		r, err := srv.Of("/").To().Timeout(5*time.Second).EmitWithAck(context.Background(), "vote")
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()
	for i, p := range peers {
		var out []string
		for deadline := time.Now().Add(time.Minute); len(out) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no ack request within a minute")
			}
			out = p.conn.texts()
		}
		id := strings.TrimSuffix(strings.TrimPrefix(out[0], "2"), `["vote"]`)
		p.send(fmt.Sprintf("3%s[%d]", id, i))
	}
	if r := <-res; len(r) != 3 {
		t.Fatalf("answers %v", r)
	}
}

func TestRecoveryThroughNamespace(t *testing.T) {
	srv := New(Config{RecoveryWindow: time.Minute})
	defer srv.Close()
	srv.Of("/").OnConnection(func(s *Socket) { s.Join("room") })
	p, ack := connectPeer(t, srv, "/", "")
	var first struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack[1:]), &first)
	srv.Of("/").To("room").Emit(context.Background(), "m", 0)
	got := p.conn.texts()
	var args []any
	json.Unmarshal([]byte(got[0][1:]), &args)
	offset := args[len(args)-1].(string)
	p.c.Close(clients.ReasonTransportClose)
	for i := 1; i <= 3; i++ {
		srv.Of("/").To("room").Emit(context.Background(), "m", i)
	}
	q, ack2 := connectPeer(t, srv, "/", fmt.Sprintf(`{"pid":%q,"offset":%q}`, first.Pid, offset))
	var second struct{ Sid, Pid string }
	json.Unmarshal([]byte(ack2[1:]), &second)
	if second.Sid != first.Sid || second.Pid != first.Pid {
		t.Fatalf("not recovered: %q then %q", ack, ack2)
	}
	missed := q.rest
	if len(missed) != 3 {
		t.Fatalf("missed %v", missed)
	}
	for i, m := range missed {
		if !strings.HasPrefix(m, fmt.Sprintf(`2["m",%d,`, i+1)) {
			t.Fatalf("missed[%d] = %q", i, m)
		}
	}
}
