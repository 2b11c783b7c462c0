package server

import (
	"io"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// Where the Engine.IO protocol test suite and Node's engine.io agree, and
// roomcast once answered otherwise (see also clients/protocol_test.go).

// A second WebSocket for an upgraded session is accepted and closed (as
// Node does), not refused with HTTP 400; the first goes on.
func TestSecondWebSocketAfterUpgradeIsClosed(t *testing.T) {
	_, addr := startServer(t, Config{RecoveryWindow: -1})
	sid := pollingHandshake(t, addr)
	url := "ws://" + addr + "/socket.io/?EIO=4&transport=websocket&sid=" + sid
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	c := &rawClient{t: t, ws: ws, sid: sid}
	c.write("2probe")
	if got := c.read(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	c.write("5")

	ws2, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("second WebSocket refused: %v (HTTP %d), want accepted then closed", err, status)
	}
	resp.Body.Close()
	defer ws2.Close()
	second := &rawClient{t: t, ws: ws2}
	if err := second.end(); err == nil {
		t.Fatal("second WebSocket not closed")
	}
	c.write(`421["echo","still"]`)
	for {
		if got := c.read(); got == `431["still"]` {
			break
		} else if got != "6" {
			t.Fatalf("first WebSocket: %q", got)
		}
	}
}

// A valid Engine.IO message whose Socket.IO payload is malformed, in a
// polling POST: the POST is answered 200 (as Node answers it) and the
// connection is closed.
func TestPollingMalformedSocketIOPayload(t *testing.T) {
	_, addr := startServer(t, Config{RecoveryWindow: -1})
	sid := pollingHandshake(t, addr)
	if code, body := pollPost(t, addr, sid, "42not json"); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST: %d %q, want 200 \"ok\"", code, body)
	}
	url := "http://" + addr + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	for i := 0; ; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			break
		}
		if i > 0 || resp.StatusCode != http.StatusOK || string(b) != "1" {
			t.Fatalf("GET %d after the bad payload: %d %q, want the close then 400", i, resp.StatusCode, b)
		}
	}
}
