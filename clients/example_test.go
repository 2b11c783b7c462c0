package clients_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/roomcast/roomcast/clients"
)

// echo sends every message back to its sender.
type echo struct{}

func (echo) Open(c clients.Conn, _ *http.Request) clients.Receiver { return echoConn{c} }

type echoConn struct{ c clients.Conn }

func (e echoConn) Text(data []byte) error {
	// The transport reuses data's memory after Text returns.
	e.c.Send(clients.Message(clients.Droppable, append([]byte(nil), data...)))
	return nil
}

func (e echoConn) Binary(data []byte) error {
	e.c.Send(clients.BinaryMessage(clients.Droppable, append([]byte(nil), data...)))
	return nil
}

func (echoConn) Close(clients.Reason) {}

// An Engine.IO server that echoes text and binary messages, over
// long-polling here (a WebSocket client works the same way).
func ExampleServer() {
	srv := clients.New(clients.Config{}, echo{})
	ts := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Drain(ctx, 0)
		srv.Wait(ctx)
		ts.Close()
		srv.Close()
	}()
	url := ts.URL + "/?EIO=4&transport=polling"

	resp, _ := http.Get(url)
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ Sid string }
	json.Unmarshal(open[1:], &hs) // 0{"sid":"…",…}
	url += "&sid=" + hs.Sid

	resp, _ = http.Post(url, "text/plain", strings.NewReader("4hello\x1ebAQIDBA=="))
	resp.Body.Close()
	resp, _ = http.Get(url)
	echoed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%q\n", echoed)
	// Output: "4hello\x1ebAQIDBA=="
}
