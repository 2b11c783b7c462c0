package clients

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// These tests cover the ground of the official Engine.IO protocol test
// suite (github.com/socketio/engine.io-protocol, test-suite) against an
// echo server built from this package alone, plus what that suite leaves
// out.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// safetyNet bounds every wait on an event that should come at once: it only
// turns a hang into a failure, and never measures anything.
const safetyNet = 60 * time.Second

// echoHandler echoes text and binary messages. A text message "bad" is
// refused, as a socket layer refuses a payload it cannot decode.
type echoHandler struct {
	mu     sync.Mutex
	texts  []string // every text received, in order
	closed []Reason
}

func (h *echoHandler) Open(c Conn, _ *http.Request) Receiver { return &echoReceiver{h: h, c: c} }

type echoReceiver struct {
	h *echoHandler
	c Conn
}

var errBadData = errors.New("bad data")

func (e *echoReceiver) Text(data []byte) error {
	if string(data) == "bad" {
		return errBadData
	}
	e.h.mu.Lock()
	e.h.texts = append(e.h.texts, string(data))
	e.h.mu.Unlock()
	e.c.Send(Message(Droppable, append([]byte(nil), data...)))
	return nil
}

func (e *echoReceiver) Binary(data []byte) error {
	e.c.Send(BinaryMessage(Droppable, append([]byte(nil), data...)))
	return nil
}

func (e *echoReceiver) Close(r Reason) {
	e.h.mu.Lock()
	e.h.closed = append(e.h.closed, r)
	e.h.mu.Unlock()
}

// fixture is an echo server on a loopback port.
type fixture struct {
	t    *testing.T
	srv  *Server
	h    *echoHandler
	http string // polling URL, without sid
	ws   string // WebSocket URL, without sid
}

func startEcho(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	h := &echoHandler{}
	srv := New(cfg, h)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
		defer cancel()
		srv.Drain(ctx, 0)
		srv.Wait(ctx)
		ts.Close()
		srv.Close()
	})
	return &fixture{
		t: t, srv: srv, h: h,
		http: ts.URL + "/engine.io/?EIO=4&transport=polling",
		ws:   "ws" + strings.TrimPrefix(ts.URL, "http") + "/engine.io/?EIO=4&transport=websocket",
	}
}

func (f *fixture) do(method, url, body string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) get(sid string) (int, string) {
	f.t.Helper()
	return f.do("GET", f.http+"&sid="+sid, "")
}

func (f *fixture) post(sid, body string) (int, string) {
	f.t.Helper()
	return f.do("POST", f.http+"&sid="+sid, body)
}

type handshake struct {
	Sid          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// parseOpen checks an open packet: exactly the protocol's keys.
func parseOpen(t *testing.T, open string) handshake {
	t.Helper()
	var keys map[string]any
	var hs handshake
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &keys) != nil || json.Unmarshal([]byte(open[1:]), &hs) != nil {
		t.Fatalf("open packet %q", open)
	}
	if len(keys) != 5 || hs.Sid == "" {
		t.Fatalf("open packet %q: want sid, upgrades, pingInterval, pingTimeout, maxPayload", open)
	}
	return hs
}

// open starts a polling session and returns its sid.
func (f *fixture) open() string {
	f.t.Helper()
	code, body := f.do("GET", f.http, "")
	if code != http.StatusOK {
		f.t.Fatalf("handshake: %d %q", code, body)
	}
	return parseOpen(f.t, body).Sid
}

// dial opens a WebSocket (with sid, an upgrade).
func (f *fixture) dial(sid string) *websocket.Conn {
	f.t.Helper()
	url := f.ws
	if sid != "" {
		url += "&sid=" + sid
	}
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	f.t.Cleanup(func() { ws.Close() })
	return ws
}

func send(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// recv reads the next message; binary ones are returned as "b" + bytes.
func recv(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(safetyNet))
	mt, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt == websocket.BinaryMessage {
		return "b" + string(b)
	}
	return string(b)
}

// closed reads until the WebSocket ends and returns the error that ended it.
func closed(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(safetyNet))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", safetyNet)
			}
			return err
		}
	}
}

// waitGone polls the session until the server forgets it (400).
func (f *fixture) waitGone(sid string) {
	f.t.Helper()
	for deadline := time.Now().Add(safetyNet); time.Now().Before(deadline); {
		code, body := f.get(sid)
		switch {
		case code == http.StatusBadRequest:
			return
		case code != http.StatusOK:
			f.t.Fatalf("GET: %d %q", code, body)
		}
	}
	f.t.Fatalf("session still open after %v", safetyNet)
}

func TestHandshakePolling(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	code, body := f.do("GET", f.http, "")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	hs := parseOpen(t, body)
	if len(hs.Upgrades) != 1 || hs.Upgrades[0] != "websocket" || hs.PingInterval != 300 || hs.PingTimeout != 200 || hs.MaxPayload != DefaultMaxPayload {
		t.Fatalf("handshake %+v", hs)
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 1234})
	ws := f.dial("")
	hs := parseOpen(t, recv(t, ws))
	if hs.Upgrades == nil || len(hs.Upgrades) != 0 || hs.PingInterval != 300 || hs.PingTimeout != 200 || hs.MaxPayload != 1234 {
		t.Fatalf("handshake %+v", hs)
	}
}

func TestBadRequests(t *testing.T) {
	f := startEcho(t, Config{})
	base := strings.TrimSuffix(f.http, "?EIO=4&transport=polling")
	tests := []struct {
		name, method, query string
		code                int
	}{
		{"no EIO", "GET", "transport=polling", codeUnsupportedVersion},
		{"EIO not a number", "GET", "EIO=abc&transport=polling", codeUnsupportedVersion},
		{"EIO 3", "GET", "EIO=3&transport=polling", codeUnsupportedVersion},
		{"no transport", "GET", "EIO=4", codeTransportUnknown},
		{"unknown transport", "GET", "EIO=4&transport=abc", codeTransportUnknown},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", codeUnknownSID},
		{"unknown sid, WebSocket", "GET", "EIO=4&transport=websocket&sid=nope", codeUnknownSID},
		{"POST handshake", "POST", "EIO=4&transport=polling", codeBadHandshakeMethod},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", codeBadHandshakeMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			code, body := f.do(tt.method, base+"?"+tt.query, "")
			var e struct {
				Code    int
				Message string
			}
			if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Code != tt.code || e.Message != engineMessages[tt.code] {
				t.Fatalf("%d %s, want 400 with code %d", code, body, tt.code)
			}
		})
	}
	// A WebSocket with a bad EIO or an unknown transport is refused
	// before the upgrade.
	for _, q := range []string{"EIO=abc&transport=websocket", "EIO=4&transport=abc"} {
		wsURL := "ws" + strings.TrimPrefix(base, "http") + "?" + q
		if _, resp, err := websocket.DefaultDialer.Dial(wsURL, nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: dial %v, want HTTP 400", q, err)
		}
	}
}

func TestPollingMessages(t *testing.T) {
	f := startEcho(t, Config{})
	for _, payload := range []string{
		"4hello",
		"4test1\x1e4test2\x1e4test3",
		"4hello\x1ebAQIDBA==", // binary as "b" + base64
		"4\x1eb",              // an empty text and an empty binary message
	} {
		sid := f.open()
		if code, body := f.post(sid, payload); code != http.StatusOK || body != "ok" {
			t.Fatalf("POST %q: %d %q", payload, code, body)
		}
		if code, body := f.get(sid); code != http.StatusOK || body != payload {
			t.Fatalf("GET after POST %q: %d %q", payload, code, body)
		}
	}
}

func TestPollingInvalidPacketCloses(t *testing.T) {
	f := startEcho(t, Config{})
	for _, payload := range []string{"abc", "4ok\x1e9", "b!!", "4ok\x1e\x1e4ok"} {
		sid := f.open()
		if code, body := f.post(sid, payload); code != http.StatusBadRequest {
			t.Fatalf("POST %q: %d %q, want 400", payload, code, body)
		}
		if code, _ := f.get(sid); code != http.StatusBadRequest {
			t.Fatalf("GET after POST %q: %d, want 400", payload, code)
		}
	}
}

func TestPollingDuplicateGetCloses(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	first := make(chan [2]any, 1)
	go func() {
		code, body := f.get(sid)
		first <- [2]any{code, body}
	}()
	waitFor(t, func() bool {
		s := f.srv.session(sid)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.getActive
	})
	if code, _ := f.get(sid); code != http.StatusBadRequest {
		t.Fatalf("second GET: %d, want 400", code)
	}
	if r := <-first; r[0] != http.StatusOK || r[1] != "1" {
		t.Fatalf("first GET: %v, want 200 \"1\"", r)
	}
	if code, _ := f.get(sid); code != http.StatusBadRequest {
		t.Fatalf("GET after: %d, want 400", code)
	}
}

func TestWebSocketMessages(t *testing.T) {
	f := startEcho(t, Config{})
	ws := f.dial("")
	recv(t, ws) // open
	send(t, ws, "4hello")
	if got := recv(t, ws); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ws); got != "b\x01\x02\x03\x04" {
		t.Fatalf("echo %q", got)
	}
	// An invalid packet closes the session.
	send(t, ws, "abc")
	var ce *websocket.CloseError
	if err := closed(t, ws); !errors.As(err, &ce) || ce.Code != 1002 {
		t.Fatalf("closed with %v, want 1002", err)
	}
}

func TestHeartbeatPolling(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 20 * time.Millisecond, PingTimeout: safetyNet})
	sid := f.open()
	for i := 0; i < 3; i++ {
		if code, body := f.get(sid); code != http.StatusOK || body != "2" {
			t.Fatalf("ping %d: %d %q", i, code, body)
		}
		if code, body := f.post(sid, "3"); code != http.StatusOK || body != "ok" {
			t.Fatalf("pong %d: %d %q", i, code, body)
		}
	}
}

func TestPingTimeoutPolling(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond})
	sid := f.open()
	if code, body := f.get(sid); code != http.StatusOK || body != "2" {
		t.Fatalf("ping: %d %q", code, body)
	}
	f.waitGone(sid) // no pong
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if len(f.h.closed) != 1 || f.h.closed[0] != ReasonPingTimeout {
		t.Fatalf("closed for %v, want ping timeout", f.h.closed)
	}
}

func TestHeartbeatWebSocket(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 20 * time.Millisecond, PingTimeout: safetyNet})
	ws := f.dial("")
	recv(t, ws) // open
	for i := 0; i < 3; i++ {
		if got := recv(t, ws); got != "2" {
			t.Fatalf("ping %d: %q", i, got)
		}
		send(t, ws, "3")
	}
}

func TestPingTimeoutWebSocket(t *testing.T) {
	f := startEcho(t, Config{PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond})
	ws := f.dial("")
	recv(t, ws) // open
	var ce *websocket.CloseError
	if err := closed(t, ws); !errors.As(err, &ce) || ce.Text != "ping timeout" {
		t.Fatalf("closed with %v, want ping timeout", err)
	}
}

func TestCloseWebSocket(t *testing.T) {
	f := startEcho(t, Config{})
	ws := f.dial("")
	recv(t, ws) // open
	send(t, ws, "1")
	if err := closed(t, ws); err == nil {
		t.Fatal("not closed")
	}
}

// A client that closes over polling (POST "1") gets its pending GET
// answered with a noop, as Node answers it, then its session is gone.
func TestClosePolling(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	polled := make(chan [2]any, 1)
	go func() {
		code, body := f.get(sid)
		polled <- [2]any{code, body}
	}()
	waitFor(t, func() bool {
		s := f.srv.session(sid)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.getActive
	})
	if code, body := f.post(sid, "1"); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST 1: %d %q", code, body)
	}
	if r := <-polled; r[0] != http.StatusOK || r[1] != "6" {
		t.Fatalf("pending GET: %v, want 200 \"6\"", r)
	}
	if code, _ := f.get(sid); code != http.StatusBadRequest {
		t.Fatalf("GET after close: %d, want 400", code)
	}
}

// A second WebSocket for an upgraded session is accepted and closed, as
// Node does; the first goes on.
func TestSecondWebSocketAfterUpgrade(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	ws := f.upgrade(sid)
	ws2 := f.dial(sid) // fails on a refusal
	var ce *websocket.CloseError
	if err := closed(t, ws2); !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("second WebSocket ended with %v, want a close frame", err)
	}
	send(t, ws, "4hello")
	if got := recv(t, ws); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
}

// A valid Engine.IO message whose data the Receiver refuses, in a polling
// POST: the POST is answered 200 "ok" (as Node answers it) and the session
// is closed for a parse error.
func TestPollingRefusedDataCloses(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	if code, body := f.post(sid, "4ok\x1e4bad\x1e4never"); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST: %d %q, want 200 \"ok\"", code, body)
	}
	f.waitGone(sid)
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if strings.Join(f.h.texts, ",") != "ok" || len(f.h.closed) != 1 || f.h.closed[0] != ReasonParseError {
		t.Fatalf("received %q, closed for %v; want \"ok\" then a parse error", f.h.texts, f.h.closed)
	}
}

// upgrade takes a polling session over to a WebSocket: probe, the pending
// GET released with a noop, upgrade.
func (f *fixture) upgrade(sid string) *websocket.Conn {
	t := f.t
	t.Helper()
	polled := make(chan string, 1)
	go func() {
		_, body := f.get(sid)
		polled <- body
	}()
	ws := f.dial(sid)
	send(t, ws, "2probe")
	if got := recv(t, ws); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if got := <-polled; got != "6" {
		t.Fatalf("pending GET answered %q, want a noop", got)
	}
	send(t, ws, "5")
	return ws
}

func TestUpgrade(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	ws := f.upgrade(sid)
	send(t, ws, "4hello")
	if got := recv(t, ws); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
	// Polling requests with the same sid are refused; the session goes on.
	if code, _ := f.get(sid); code != http.StatusBadRequest {
		t.Fatalf("GET after upgrade: %d, want 400", code)
	}
	if code, _ := f.post(sid, "4late"); code != http.StatusBadRequest {
		t.Fatalf("POST after upgrade: %d, want 400", code)
	}
	send(t, ws, "4again")
	if got := recv(t, ws); got != "4again" {
		t.Fatalf("echo %q", got)
	}
}

// A polling POST still running as the upgrade completes: the session has
// one reader at a time. The POST's messages reach the Receiver first, the
// WebSocket's after them (the Receiver is not safe for concurrent use, so
// two readers at once are a data race), and a POST after the upgrade is
// refused while the session goes on.
func TestUpgradeWaitsForRunningPost(t *testing.T) {
	f := startEcho(t, Config{})
	sid := f.open()
	ws := f.dial(sid)
	send(t, ws, "2probe")
	if got := recv(t, ws); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	// A POST that announces its body but sends only part of it for now.
	body := "4post1\x1ebAQID\x1e4post2"
	addr := strings.TrimPrefix(strings.Split(f.http, "/engine.io/")[0], "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", sid, addr, len(body), body[:4])
	waitFor(t, func() bool {
		s := f.srv.session(sid)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.postActive
	})
	send(t, ws, "5")
	send(t, ws, "4ws1")
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1}); err != nil {
		t.Fatal(err)
	}
	send(t, ws, "4ws2")
	io.WriteString(conn, body[4:])
	conn.SetReadDeadline(time.Now().Add(safetyNet))
	pr, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("running POST answered %d %q", pr.StatusCode, b)
	}
	var got []string
	for len(got) < 6 {
		if m := recv(t, ws); m != "6" { // the noop that released the pending GET, if any
			got = append(got, m)
		}
	}
	want := []string{"4post1", "b\x01\x02\x03", "4post2", "4ws1", "b\x01", "4ws2"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("echoes %q, want %q", got, want)
	}
	if code, _ := f.post(sid, "4late"); code != http.StatusBadRequest {
		t.Fatalf("POST after upgrade: %d, want 400", code)
	}
	send(t, ws, "4after")
	if m := recv(t, ws); m != "4after" {
		t.Fatalf("echo after the refused POST %q", m)
	}
}

// waitFor polls cond until it holds (failing after safetyNet).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(safetyNet); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %v", safetyNet)
}
