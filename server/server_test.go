package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/roomcast/roomcast/clients"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs a server on a random loopback port until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, "127.0.0.1:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// rawClient is an Engine.IO client over WebSocket written against the
// protocol, for tests that check the wire or misbehave.
type rawClient struct {
	t   testing.TB
	ws  *websocket.Conn
	sid string
}

// dialRaw opens a WebSocket session; rcvBuf > 0 shrinks the socket's
// receive buffer (for clients that stop reading).
func dialRaw(t testing.TB, addr string, rcvBuf int) *rawClient {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err == nil && rcvBuf > 0 {
			c.(*net.TCPConn).SetReadBuffer(rcvBuf)
		}
		return c, err
	}}
	ws, resp, err := d.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := &rawClient{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	open := c.read()
	if !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}
	var hs struct{ Sid string }
	json.Unmarshal([]byte(open[1:]), &hs)
	c.sid = hs.Sid
	return c
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next text message, answering pings on the way.
func (c *rawClient) read() string {
	c.t.Helper()
	for {
		c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if string(b) == "2" {
			c.write("3")
			continue
		}
		return string(b)
	}
}

// closeError reads until the connection ends and returns its close error.
func (c *rawClient) closeError(within time.Duration) *websocket.CloseError {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func (c *rawClient) connect(nsp string) string {
	c.t.Helper()
	if nsp == "/" {
		c.write("40")
	} else {
		c.write("40" + nsp + ",")
	}
	return c.read()
}

func TestHandshakeFields(t *testing.T) {
	_, addr := startServer(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 1234})
	resp, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct {
		Sid          string
		Upgrades     []string
		PingInterval int
		PingTimeout  int
		MaxPayload   int
	}
	if body[0] != '0' || json.Unmarshal(body[1:], &hs) != nil {
		t.Fatalf("handshake %q", body)
	}
	if len(hs.Sid) != 20 || len(hs.Upgrades) != 1 || hs.Upgrades[0] != "websocket" || hs.PingInterval != 300 || hs.PingTimeout != 200 || hs.MaxPayload != 1234 {
		t.Fatalf("handshake %+v", hs)
	}
}

func TestBadRequests(t *testing.T) {
	_, addr := startServer(t, Config{})
	tests := []struct {
		name, method, query string
		status, code        int
	}{
		{"no EIO", "GET", "transport=polling", 400, codeUnsupportedVersion},
		{"EIO 3", "GET", "EIO=3&transport=polling", 400, codeUnsupportedVersion},
		{"unknown transport", "GET", "EIO=4&transport=carrier-pigeon", 400, codeTransportUnknown},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", 400, codeUnknownSID},
		{"POST handshake", "POST", "EIO=4&transport=polling", 400, codeBadHandshakeMethod},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 400, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+addr+"/socket.io/?"+tt.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.code >= 0 {
				var e struct {
					Code    int
					Message string
				}
				if json.Unmarshal(body, &e) != nil || e.Code != tt.code || e.Message != engineMessages[tt.code] {
					t.Fatalf("body %s, want code %d", body, tt.code)
				}
			}
		})
	}
}

func TestMalformedPacketClosesOnlyThatConnection(t *testing.T) {
	_, addr := startServer(t, Config{})
	good := dialRaw(t, addr, 0)
	good.connect("/")
	for _, bad := range []string{"4{{{", "42not json", "9", "", "43[1]"} {
		c := dialRaw(t, addr, 0)
		c.connect("/")
		c.write(bad)
		ce := c.closeError(5 * time.Second)
		if ce.Code != 1002 || ce.Text != "parse error" {
			t.Fatalf("%q: close %d %q, want 1002 parse error", bad, ce.Code, ce.Text)
		}
	}
	good.write(`421["echo","still here"]`)
	if got := good.read(); got != `431["still here"]` {
		t.Fatalf("healthy client got %q", got)
	}
}

func TestOversizedMessageCloses(t *testing.T) {
	_, addr := startServer(t, Config{MaxPayload: 1000})
	c := dialRaw(t, addr, 0)
	c.connect("/")
	c.write(`42["echo","` + strings.Repeat("x", 2000) + `"]`)
	ce := c.closeError(5 * time.Second)
	if ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d %q, want 1009", ce.Code, ce.Text)
	}
}

func TestPingTimeoutCloses(t *testing.T) {
	srv, addr := startServer(t, Config{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	c := dialRaw(t, addr, 0)
	start := time.Now()
	// Do not answer pings.
	ce := c.closeError(5 * time.Second)
	if ce.Text != "ping timeout" {
		t.Fatalf("close %d %q", ce.Code, ce.Text)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("closed after %v, before interval+timeout", el)
	}
	waitFor(t, func() bool { return len(srv.sessionsNow()) == 0 })
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

func (srv *Server) sessionsNow() []*session {
	srv.smu.RLock()
	defer srv.smu.RUnlock()
	var out []*session
	for _, s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// stalledClient joins room "r" and stops reading.
func stalledClient(t *testing.T, addr string) *rawClient {
	// A receive buffer below the loopback MSS (64 KB) makes Linux keep the
	// window shut even after the reader resumes; 256 KB avoids that.
	c := dialRaw(t, addr, 256<<10)
	c.connect("/")
	c.write(`421["join","r"]`)
	if got := c.read(); got != `431[{"ok":true}]` {
		t.Fatalf("join: %q", got)
	}
	return c
}

// flood broadcasts 1 KB messages to room "r" until the connection is gone.
func flood(t *testing.T, srv *Server, until func() bool) int {
	payload := strings.Repeat("x", 1024)
	n := 0
	for deadline := time.Now().Add(30 * time.Second); !until(); n++ {
		if time.Now().After(deadline) {
			t.Fatalf("still open after %d messages", n)
		}
		srv.To("r").Emit(context.Background(), "m", payload)
		if n%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return n
}

func TestQueueFullCloses(t *testing.T) {
	srv, addr := startServer(t, Config{
		Queue:        clients.QueueConfig{MaxPackets: 64, MaxBytes: -1, Policy: clients.Disconnect},
		WriteTimeout: time.Hour, // only the queue bound can trigger
	})
	c := stalledClient(t, addr)
	n := flood(t, srv, func() bool { return len(srv.sessionsNow()) == 0 })
	t.Logf("closed after %d messages", n)
	ce := c.closeError(30 * time.Second)
	if ce.Code != 1008 || ce.Text != "send queue full" {
		t.Fatalf("close %d %q, want 1008 send queue full", ce.Code, ce.Text)
	}
}

func TestWriteTimeoutCloses(t *testing.T) {
	srv, addr := startServer(t, Config{
		Queue:        clients.QueueConfig{MaxPackets: -1, MaxBytes: -1}, // only the write timeout can trigger
		WriteTimeout: 300 * time.Millisecond,
	})
	c := stalledClient(t, addr)
	n := flood(t, srv, func() bool { return len(srv.sessionsNow()) == 0 })
	t.Logf("closed after %d messages", n)
	ce := c.closeError(30 * time.Second)
	if ce.Code != 1008 || ce.Text != "Send timeout" {
		t.Fatalf("close %d %q, want 1008 Send timeout", ce.Code, ce.Text)
	}
}

// A connection that was slow once (its writes went to a goroutine of its
// own, with a write deadline) and recovered keeps working after that
// deadline would have passed: the pool's non-blocking writes must not trip
// over a stale deadline.
func TestSlowThenFastKeepsConnection(t *testing.T) {
	srv, addr := startServer(t, Config{WriteTimeout: 300 * time.Millisecond, Queue: clients.QueueConfig{MaxPackets: -1, MaxBytes: -1}})
	c := dialRaw(t, addr, 256<<10)
	c.connect("/")
	c.join("r")
	payload := strings.Repeat("x", 16<<10)
	// Enough to fill the socket buffers while the client does not read for
	// a moment (shorter than the write timeout).
	for i := 0; i < 1000; i++ {
		srv.To("r").Emit(context.Background(), "m", i, payload)
	}
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 1000; i++ {
		c.expect(fmt.Sprintf(`^42\["m",%d,`, i))
	}
	time.Sleep(600 * time.Millisecond) // past any deadline the slow writes set
	for i := 0; i < 20; i++ {
		srv.To("r").Emit(context.Background(), "after", i)
		c.expect(fmt.Sprintf(`^42\["after",%d`, i))
	}
	if n := len(srv.sessionsNow()); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// An upgraded connection keeps working past the upgrade timeout.
func TestUpgradedConnectionOutlivesUpgradeTimeout(t *testing.T) {
	srv, addr := startServer(t, Config{UpgradeTimeout: 200 * time.Millisecond, RecoveryWindow: -1})
	resp, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ Sid string }
	json.Unmarshal(body[1:], &hs)
	post := func(s string) {
		r, err := http.Post("http://"+addr+"/socket.io/?EIO=4&transport=polling&sid="+hs.Sid, "text/plain", strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
	}
	post("40")
	ws, r2, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket&sid="+hs.Sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	defer ws.Close()
	c := &rawClient{t: t, ws: ws, sid: hs.Sid}
	c.write("2probe")
	if got := c.read(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	c.write("5")
	time.Sleep(500 * time.Millisecond) // past the upgrade timeout
	c.write(`421["echo","still"]`)
	c.expect(`^431\["still"\]$`)
	srv.To().Emit(context.Background(), "hello")
	c.expect(`^42\["hello"\]$`)
}
