package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pollingHandshake opens a polling session, connects it to "/" and returns
// its sid.
func pollingHandshake(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ Sid string }
	if len(body) < 2 || json.Unmarshal(body[1:], &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake answer %q", body)
	}
	if code, got := pollPost(t, addr, hs.Sid, "40"); code != http.StatusOK {
		t.Fatalf("POST 40: %d %q", code, got)
	}
	resp, err = http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling&sid=" + hs.Sid)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "40{") {
		t.Fatalf("connect answer %q", body)
	}
	return hs.Sid
}

func pollPost(t *testing.T, addr, sid, payload string) (int, string) {
	t.Helper()
	r, err := http.Post("http://"+addr+"/socket.io/?EIO=4&transport=polling&sid="+sid, "text/plain;charset=UTF-8", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// A polling POST still running as the upgrade completes: the session has
// one reader at a time. The POST's packets are handled first, the
// WebSocket's after them (on the old code both transports called the
// socket layer at once: a data race, and the WebSocket ran ahead), and a
// POST after the upgrade is refused while the session goes on.
func TestUpgradeWaitsForRunningPost(t *testing.T) {
	srv, addr := startServer(t, Config{RecoveryWindow: -1})
	sid := pollingHandshake(t, addr)

	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket&sid="+sid, nil)
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

	// A POST that announces its body but sends only part of it for now.
	// Each side sends a binary event (its attachment is state the socket
	// layer keeps between two messages), then an echo with an ack.
	const binEvent = `451-["echo",{"_placeholder":true,"num":0}]`
	body := binEvent + "\x1ebAQID\x1e" + `421["echo","post"]`
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", sid, addr, len(body), body[:10])
	waitFor(t, func() bool {
		s := srv.session(sid)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.postActive
	})

	// Complete the upgrade and send over the WebSocket.
	c.write("5")
	c.write(binEvent)
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.write(`422["echo","ws"]`)

	acks := make(chan string, 4)
	go func() {
		defer close(acks)
		for {
			ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			mt, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if mt == websocket.TextMessage && strings.HasPrefix(string(b), "43") {
				acks <- string(b)
			}
		}
	}()
	// Give the WebSocket time to run ahead of the POST, as it did on the
	// old code. Nothing is asserted on this wait: on the fixed code no ack
	// comes, as the WebSocket is not read while the POST runs.
	var got []string
	select {
	case a := <-acks:
		got = append(got, a)
	case <-time.After(time.Second):
	}

	// The rest of the POST body; it is answered "ok".
	io.WriteString(conn, body[10:])
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	pr, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("running POST answered %d %q", pr.StatusCode, b)
	}
	for len(got) < 2 {
		a, ok := <-acks
		if !ok {
			t.Fatalf("WebSocket ended; acks so far %q", got)
		}
		got = append(got, a)
	}
	if got[0] != `431["post"]` || got[1] != `432["ws"]` {
		t.Fatalf("acks %q, want the POST's first, then the WebSocket's", got)
	}

	// A POST after the upgrade is refused; the session goes on.
	if code, _ := pollPost(t, addr, sid, `423["echo","late"]`); code != http.StatusBadRequest {
		t.Fatalf("POST after upgrade: %d, want 400", code)
	}
	c.write(`424["echo","after"]`)
	if a := <-acks; a != `434["after"]` {
		t.Fatalf("ack after the refused POST %q", a)
	}
}
