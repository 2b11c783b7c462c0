package clients

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"
)

// deepHandler echoes text messages; "deep" first recurses through about
// 64 KiB of stack, as a handler that encodes or logs a lot may.
type deepHandler struct{}

func (deepHandler) Open(c Conn, _ *http.Request) Receiver { return deepReceiver{c} }

type deepReceiver struct{ c Conn }

//go:noinline
func recurse(n int) byte {
	var pad [256]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return recurse(n-1) + pad[n%len(pad)]
}

func (d deepReceiver) Text(data []byte) error {
	if string(data) == "deep" {
		recurse(256)
	}
	d.c.Send(Message(Droppable, append([]byte(nil), data...)))
	return nil
}

func (deepReceiver) Binary([]byte) error { return nil }
func (deepReceiver) Close(Reason)        {}

var readerHeader = regexp.MustCompile(`^goroutine (\d+) \[([^\],]+)`)

// parkedReader waits until the connection's one read loop is parked in its
// read, and returns its goroutine's id.
func parkedReader(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(safetyNet); time.Now().Before(deadline); runtime.Gosched() {
		n := runtime.Stack(buf, true)
		var ids []string
		parked := true
		for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
			if !strings.Contains(string(g), "clients.(*wsConn).readLoop") {
				continue
			}
			m := readerHeader.FindSubmatch(g)
			if m == nil {
				t.Fatalf("goroutine header: %q", g)
			}
			ids = append(ids, string(m[1]))
			parked = parked && string(m[2]) == "IO wait"
		}
		if len(ids) == 1 && parked {
			return ids[0]
		}
	}
	t.Fatalf("no single parked read loop after %v", safetyNet)
	return ""
}

// TestReadLoopDropsGrownStack: a message whose handling grew the read
// loop's stack is followed by a fresh read loop (a small stack for the
// idle connection): at once the first time, later at the next pong; and
// reading goes on in order.
func TestReadLoopDropsGrownStack(t *testing.T) {
	srv := New(Config{Logger: zaptest.NewLogger(t)}, deepHandler{})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
		defer cancel()
		srv.Drain(ctx, 0)
		srv.Wait(ctx)
		ts.Close()
		srv.Close()
	})
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/engine.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	if open := recv(t, ws); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}
	send(t, ws, "4a")
	if got := recv(t, ws); got != "4a" {
		t.Fatalf("echo %q", got)
	}
	before := parkedReader(t)
	send(t, ws, "4deep")
	send(t, ws, "4b")
	for _, want := range []string{"4deep", "4b"} {
		if got := recv(t, ws); got != want {
			t.Fatalf("echo %q, want %q", got, want)
		}
	}
	// The first growth hands over at once (here at "4a" or at "4deep");
	// a later one at the next pong.
	send(t, ws, "3")
	send(t, ws, "4c")
	if got := recv(t, ws); got != "4c" {
		t.Fatalf("echo %q, want 4c", got)
	}
	second := parkedReader(t)
	if second == before {
		t.Fatalf("the read loop that grew its stack (goroutine %s) is still the reader", before)
	}
	send(t, ws, "4deep")
	if got := recv(t, ws); got != "4deep" {
		t.Fatalf("echo %q, want 4deep", got)
	}
	if again := parkedReader(t); again != second {
		t.Fatalf("a later growth handed over before a pong (goroutine %s, then %s)", second, again)
	}
	send(t, ws, "3")
	send(t, ws, "4d")
	if got := recv(t, ws); got != "4d" {
		t.Fatalf("echo %q, want 4d", got)
	}
	if third := parkedReader(t); third == second {
		t.Fatalf("the pong after a growth did not hand over (goroutine %s)", second)
	}
}
