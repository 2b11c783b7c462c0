package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/hubtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// safetyNet bounds waits on events that should come at once: it only turns
// a hang into a failure, generous enough for a loaded machine.
const safetyNet = time.Minute

type received struct {
	kind string // "event" or "ack"
	name string
	id   int64
	args string
}

// recorder is a Handler that copies what it gets into a channel.
type recorder chan received

func (r recorder) HandleEvent(name, args []byte) {
	r <- received{kind: "event", name: string(name), args: string(args)}
}

func (r recorder) HandleAck(id int64, args []byte) {
	r <- received{kind: "ack", id: id, args: string(args)}
}

func (r recorder) next(tb testing.TB) received {
	tb.Helper()
	select {
	case x := <-r:
		return x
	case <-time.After(safetyNet):
		tb.Fatalf("nothing received within %v", safetyNet)
		return received{}
	}
}

// dial connects a client and runs its reader until the test ends.
// The returned channel is closed when ReadLoop has returned; *readErr then
// holds its result.
func dial(tb testing.TB, d *Dialer) (c *Conn, rec recorder, done <-chan struct{}, readErr *error) {
	tb.Helper()
	rec = make(recorder, 16)
	c, err := d.Dial(context.Background(), rec)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	ch := make(chan struct{})
	readErr = new(error)
	go func() {
		defer close(ch)
		*readErr = c.ReadLoop()
	}()
	tb.Cleanup(func() {
		_ = c.Close()
		<-ch
	})
	return c, rec, ch, readErr
}

func newDialer(tb testing.TB, opts Options) *Dialer {
	tb.Helper()
	d, err := NewDialer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestClientAgainstStubHub(t *testing.T) {
	// Pings come often (for "pings are answered"), but the hub waits long
	// for a pong: a stopped reader answers none, and a loaded machine may
	// delay the others.
	hub := hubtest.New(hubtest.Options{PingInterval: 30 * time.Millisecond, PingTimeout: safetyNet})
	base := hub.Start(t)
	d := newDialer(t, Options{URL: base})
	if !strings.HasPrefix(d.URL(), "ws://127.0.0.1:") || !strings.HasSuffix(d.URL(), "/socket.io/?EIO=4&transport=websocket") {
		t.Fatalf("dial URL %q", d.URL())
	}

	a, recA, _, _ := dial(t, d)
	b, recB, _, _ := dial(t, d)
	if a.SID() == "" || a.SID() == b.SID() || a.Open().PingInterval != 30 {
		t.Fatalf("handshake: sid %q/%q open %+v", a.SID(), b.SID(), a.Open())
	}

	t.Run("join acks", func(t *testing.T) {
		if err := a.EmitAck(0, "join", []byte(`"room-1"`)); err != nil {
			t.Fatal(err)
		}
		if got := recA.next(t); got != (received{kind: "ack", id: 0, args: `[{"ok":true}]`}) {
			t.Fatalf("join ack: %+v", got)
		}
	})

	t.Run("echo returns the value", func(t *testing.T) {
		payload := []byte(`{"t":123,"p":"xxxxxxxx"}`)
		if err := b.EmitAck(41, "echo", payload); err != nil {
			t.Fatal(err)
		}
		got := recB.next(t)
		if got.kind != "ack" || got.id != 41 || got.args != "["+string(payload)+"]" {
			t.Fatalf("echo ack: %+v", got)
		}
	})

	t.Run("publish reaches the room", func(t *testing.T) {
		if err := b.EmitAck(42, "publish", []byte(`{"room":"room-1","event":"tick","data":{"s":1}}`)); err != nil {
			t.Fatal(err)
		}
		if got := recA.next(t); got != (received{kind: "event", name: "tick", args: `{"s":1}`}) {
			t.Fatalf("event: %+v", got)
		}
		if got := recB.next(t); got.kind != "ack" || got.id != 42 {
			t.Fatalf("publish ack: %+v", got)
		}
	})

	t.Run("http emit reaches the room", func(t *testing.T) {
		resp, err := http.Post(base+"/api/v1/emit", "application/json",
			strings.NewReader(`{"namespace":"/","rooms":["room-1"],"event":"tock","data":[1,"two"]}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if got := recA.next(t); got != (received{kind: "event", name: "tock", args: `[1,"two"]`}) {
			t.Fatalf("event: %+v", got)
		}
	})

	t.Run("emit without ack", func(t *testing.T) {
		if err := a.Emit("join", []byte(`"room-2"`)); err != nil {
			t.Fatal(err)
		}
		if err := a.EmitAck(-1, "join", nil); err == nil {
			t.Fatal("negative ack id accepted")
		}
	})

	t.Run("stop and resume reading", func(t *testing.T) {
		emit := func(event string) {
			resp, err := http.Post(base+"/api/v1/emit", "application/json",
				strings.NewReader(`{"rooms":["room-1"],"event":"`+event+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
		}
		a.StopReading()
		// The reader parks at its next frame, which it drops: the hub's
		// next ping (every 30 ms), however late the reader gets to it.
		// From then on, frames wait unread.
		deadline := time.Now().Add(safetyNet)
		for a.Dropped() < 1 {
			if time.Now().After(deadline) {
				t.Fatal("the stopped reader never dropped a frame")
			}
			time.Sleep(5 * time.Millisecond)
		}
		emit("e2")
		emit("e3")
		select {
		case got := <-recA:
			t.Fatalf("stopped reader delivered %+v", got)
		default:
		}
		a.ResumeReading()
		a.ResumeReading()
		emit("after")
		for _, want := range []string{"e2", "e3", "after"} {
			if got := recA.next(t); got.kind != "event" || got.name != want {
				t.Fatalf("got %+v, want event %s", got, want)
			}
		}
	})

	t.Run("pings are answered", func(t *testing.T) {
		deadline := time.Now().Add(safetyNet)
		for hub.Pongs() < 4 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d pongs after %v", hub.Pongs(), safetyNet)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestClientEndings(t *testing.T) {
	hub := hubtest.New(hubtest.Options{Token: "secret"})
	base := hub.Start(t)

	t.Run("connect_error without token", func(t *testing.T) {
		_, err := newDialer(t, Options{URL: base}).Dial(context.Background(), make(recorder, 1))
		var ce *ConnectError
		if !errors.As(err, &ce) || !strings.Contains(ce.Data, "unauthorized") {
			t.Fatalf("err = %v, want connect_error unauthorized", err)
		}
	})

	t.Run("connect_error on unknown namespace", func(t *testing.T) {
		_, err := newDialer(t, Options{URL: base, Namespace: "/nope", Auth: []byte(`{"token":"secret"}`)}).
			Dial(context.Background(), make(recorder, 1))
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v, want connect_error", err)
		}
	})

	t.Run("refused dial", func(t *testing.T) {
		d := newDialer(t, Options{URL: "http://127.0.0.1:1", HandshakeTimeout: time.Second})
		if _, err := d.Dial(context.Background(), make(recorder, 1)); err == nil {
			t.Fatal("dial to a closed port succeeded")
		}
	})

	t.Run("server close ends the reader with an error", func(t *testing.T) {
		d := newDialer(t, Options{URL: base, Auth: []byte(`{"token":"secret"}`)})
		_, _, done, readErr := dial(t, d)
		hub.CloseAll()
		select {
		case <-done:
			if *readErr == nil {
				t.Fatal("ReadLoop returned nil after a server close")
			}
		case <-time.After(safetyNet):
			t.Fatal("reader still running a minute after the server closed")
		}
	})

	t.Run("own close ends the reader with nil", func(t *testing.T) {
		d := newDialer(t, Options{URL: base, Auth: []byte(`{"token":"secret"}`)})
		c, _, done, readErr := dial(t, d)
		c.StopReading()
		_ = c.Close()
		_ = c.Close()
		select {
		case <-done:
			if *readErr != nil {
				t.Fatalf("ReadLoop = %v after Close", *readErr)
			}
		case <-time.After(safetyNet):
			t.Fatal("reader still running a minute after Close")
		}
	})
}

func TestNewDialerRejects(t *testing.T) {
	for _, opts := range []Options{{URL: "ftp://x"}, {URL: "http://"}, {URL: "http://h", Namespace: "chat"}, {URL: ":"}} {
		if _, err := NewDialer(opts); err == nil {
			t.Errorf("NewDialer(%+v) accepted", opts)
		}
	}
	d, err := NewDialer(Options{URL: "https://example.test:8443/ignored?x=1", Path: "/rt/"})
	if err != nil || !bytes.Equal([]byte(d.URL()), []byte("wss://example.test:8443/rt/?EIO=4&transport=websocket")) {
		t.Fatalf("URL = %q, %v", d.URL(), err)
	}
}
