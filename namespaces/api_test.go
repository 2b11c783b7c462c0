package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/clients"
)

// safetyNet bounds a wait that only a bug makes long.
const safetyNet = 30 * time.Second

// notifyConn tells the test when the socket layer queued a packet.
type notifyConn struct {
	*fakeConn
	sent chan struct{}
}

func (n *notifyConn) Send(p *clients.Packet) {
	n.fakeConn.Send(p)
	select {
	case n.sent <- struct{}{}:
	default:
	}
}

// connectNotify connects a client whose sends the test can wait for, and
// returns it with its socket.
func connectNotify(t *testing.T, srv *Server) (*Client, *notifyConn, *Socket) {
	t.Helper()
	sockets := make(chan *Socket, 1)
	srv.Of("/").OnConnection(func(s *Socket) { sockets <- s })
	conn := &notifyConn{fakeConn: newFakeConn(), sent: make(chan struct{}, 1)}
	c := srv.NewClient(conn, nil)
	if err := c.Text([]byte("0")); err != nil {
		t.Fatal(err)
	}
	s := <-sockets
	<-conn.sent // the CONNECT answer
	conn.texts()
	return c, conn, s
}

// A broadcast with ack whose only recipient disconnects returns at once,
// with no answer, instead of waiting for its timeout (here none).
func TestBroadcastAckEndsWhenRecipientDisconnects(t *testing.T) {
	srv := New(Config{AckTimeout: -1})
	defer srv.Close()
	c, conn, s := connectNotify(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	type result struct {
		answers []any
		err     error
	}
	done := make(chan result, 1)
	go func() {
		a, err := srv.Of("/").To(s.ID()).EmitWithAck(ctx, "q")
		done <- result{a, err}
	}()
	<-conn.sent
	c.Close(clients.ReasonTransportClose)
	r := <-done
	if r.err != nil || len(r.answers) != 0 {
		t.Fatalf("got %v, %v; want no answer and no error", r.answers, r.err)
	}
}

// A socket's own emit with ack ends with ErrSocketDisconnected.
func TestSocketAckEndsWhenItDisconnects(t *testing.T) {
	srv := New(Config{AckTimeout: -1})
	defer srv.Close()
	c, conn, s := connectNotify(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.EmitWithAck(ctx, "q")
		done <- err
	}()
	<-conn.sent
	c.Close(clients.ReasonTransportClose)
	if err := <-done; !errors.Is(err, ErrSocketDisconnected) {
		t.Fatalf("got %v, want ErrSocketDisconnected", err)
	}
	if _, err := s.EmitWithAck(ctx, "q"); !errors.Is(err, ErrSocketDisconnected) {
		t.Fatalf("after the disconnect: %v", err)
	}
}

func TestDefaultAckTimeout(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want time.Duration
	}{
		{"zero is the default", 0, DefaultAckTimeout},
		{"negative is none", -1, 0},
		{"set", time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := New(Config{AckTimeout: tt.in})
			defer srv.Close()
			if got := srv.cfg.AckTimeout; got != tt.want {
				t.Fatalf("AckTimeout %v, want %v", got, tt.want)
			}
		})
	}
}

// Timeout and Volatile return an emitter of the socket itself: its data
// and handlers stay where they are.
func TestTimeoutEmitterIsTheSocket(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	_, conn, s := connectNotify(t, srv)
	s.Set("user", "ann")
	e := s.Timeout(time.Minute).Volatile()
	if e.Socket() != s {
		t.Fatal("the emitter is not the socket's")
	}
	if v, _ := e.Socket().Get("user"); v != "ann" {
		t.Fatalf("data lost: %v", v)
	}
	if err := e.Emit(context.Background(), "v", 1); err != nil {
		t.Fatal(err)
	}
	<-conn.sent
	if out := conn.texts(); len(out) != 1 || out[0] != `2["v",1]` {
		t.Fatalf("sent %v", out)
	}
}

func TestEmitErrors(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	c, _, s := connectNotify(t, srv)
	ctx := context.Background()
	tests := []struct {
		name string
		emit func() error
		want error
	}{
		{"reserved name", func() error { return s.Emit(ctx, "disconnect") }, ErrEventName},
		{"function argument", func() error { return s.Emit(ctx, "f", func() {}) }, ErrEncode},
		{"NaN", func() error { return s.Emit(ctx, "f", math.NaN()) }, ErrEncode},
		{"NaN in a map, broadcast", func() error { return srv.Of("/").Emit(ctx, "f", map[string]any{"x": math.Inf(1)}) }, ErrEncode},
		{"channel in a struct", func() error { return srv.Of("/").To("r").Emit(ctx, "f", struct{ C chan int }{}) }, ErrEncode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.emit(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	c.Close(clients.ReasonTransportClose)
	for name, err := range map[string]error{
		"emit": s.Emit(ctx, "e"), "join": s.Join("r"), "leave": s.Leave("r"), "disconnect": s.Disconnect(false),
	} {
		if !errors.Is(err, ErrSocketDisconnected) {
			t.Errorf("%s after disconnect: %v", name, err)
		}
	}
	if rooms := srv.Of("/").Adapter().Rooms(s.ID()); len(rooms) != 0 {
		t.Fatalf("a disconnected socket is in rooms %v", rooms)
	}
}

func TestSocketContextEndsOnDisconnect(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	c, _, s := connectNotify(t, srv)
	ctx := s.Context()
	if ctx.Err() != nil {
		t.Fatal("context ended while connected")
	}
	c.Close(clients.ReasonTransportClose)
	<-ctx.Done()
	if s.Context().Err() == nil {
		t.Fatal("a context asked for after the disconnect is live")
	}
}

// A number beyond float64 does not break the connection (it did: 1002
// parse error); it reaches the handler as json.Number and echoes back as
// written (other numbers are float64, as in JavaScript). Raw and Bind read
// arguments as sent.
func TestWideNumbersAndRawArguments(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	type msg struct {
		B int
		A uint64
	}
	got := make(chan *Event, 1)
	srv.Of("/").On("m", func(ev *Event) {
		_ = ev.Ack(ev.Args...)
		got <- ev
	})
	c, conn, _ := connectNotify(t, srv)
	if err := c.Text([]byte(`21["m",1e400,{"b":1,"a":18446744073709551615},[-1e999]]`)); err != nil {
		t.Fatalf("1e400 closes the connection: %v", err)
	}
	ev := <-got
	if n, ok := ev.Args[0].(json.Number); !ok || n != "1e400" {
		t.Fatalf("arg 0 = %#v", ev.Args[0])
	}
	if out := conn.texts(); len(out) != 1 || out[0] != `31[1e400,{"a":18446744073709552000,"b":1},[-1e999]]` {
		t.Fatalf("ack %v", out)
	}
	raw, err := ev.Raw(1)
	if err != nil || string(raw) != `{"b":1,"a":18446744073709551615}` {
		t.Fatalf("Raw(1) = %s, %v", raw, err)
	}
	m, err := Bind[msg](ev, 1)
	if err != nil || m.A != math.MaxUint64 || m.B != 1 {
		t.Fatalf("Bind = %+v, %v", m, err)
	}
	if _, err := Bind[msg](ev, 3); !errors.Is(err, ErrNoArgument) {
		t.Fatalf("Bind of a missing argument: %v", err)
	}
	if _, err := ev.Raw(-1); !errors.Is(err, ErrNoArgument) {
		t.Fatalf("Raw(-1): %v", err)
	}
}

// Raw shows attachments as placeholders; Bind gives them to []byte fields.
func TestBindBinary(t *testing.T) {
	srv := New(Config{})
	defer srv.Close()
	got := make(chan *Event, 1)
	srv.Of("/").On("b", func(ev *Event) { got <- ev })
	c, _, _ := connectNotify(t, srv)
	if err := c.Text([]byte(`51-["b",{"name":"f","body":{"_placeholder":true,"num":0}}]`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Binary([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	ev := <-got
	f, err := Bind[struct {
		Name string
		Body []byte
	}](ev, 0)
	if err != nil || f.Name != "f" || string(f.Body) != "\x01\x02\x03" {
		t.Fatalf("Bind = %+v, %v", f, err)
	}
	raw, _ := ev.Raw(0)
	if !strings.Contains(string(raw), `"_placeholder":true`) {
		t.Fatalf("Raw(0) = %s", raw)
	}
}
