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
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	cfg.Hub.Enabled = true // the tests speak the hub protocol
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
	// One deadline for the whole read: the server's pings, answered
	// below, must not extend the wait for a message that never comes.
	c.ws.SetReadDeadline(time.Now().Add(safetyNet))
	for {
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

// safetyNet bounds every wait of these tests on an event that should come
// at once: it only turns a hang into a failure, so it is generous enough
// for a loaded machine and never measures anything.
const safetyNet = 60 * time.Second

// closeError reads until the connection ends and returns its close error.
func (c *rawClient) closeError() *websocket.CloseError {
	c.t.Helper()
	err := c.end()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
	return ce
}

// end reads (and discards) until the connection ends and returns the error
// that ended it.
func (c *rawClient) end() error {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(safetyNet))
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after %v", safetyNet)
			}
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
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
		{"no EIO", "GET", "transport=polling", 400, 5},
		{"EIO 3", "GET", "EIO=3&transport=polling", 400, 5},
		{"unknown transport", "GET", "EIO=4&transport=carrier-pigeon", 400, 0},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", 400, 1},
		{"POST handshake", "POST", "EIO=4&transport=polling", 400, 2},
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
				if json.Unmarshal(body, &e) != nil || e.Code != tt.code || e.Message == "" {
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
		ce := c.closeError()
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
	ce := c.closeError()
	if ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close %d %q, want 1009", ce.Code, ce.Text)
	}
}

func TestPingTimeoutCloses(t *testing.T) {
	srv, addr := startServer(t, Config{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	// The server's timer starts at the handshake, inside dialRaw: measuring
	// from before the dial makes the lower bound below hold however long
	// the dial takes on a loaded machine (a timer fires no earlier than set).
	start := time.Now()
	c := dialRaw(t, addr, 0)
	// Do not answer pings.
	ce := c.closeError()
	if ce.Text != "ping timeout" {
		t.Fatalf("close %d %q", ce.Code, ce.Text)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("closed after %v, before interval+timeout", el)
	}
	waitFor(t, func() bool { return srv.engine.Len() == 0 })
}

// waitFor polls cond until it holds (failing after safetyNet).
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(safetyNet); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %v", safetyNet)
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

// overBuffers is more than the socket buffers between the server and a
// stalled client can hold (Linux tcp_wmem max 4 MiB on the server side,
// stalledClient's 256 KiB receive buffer, doubled by the kernel, on the
// other): with this much queued for a reader that stopped, the server's
// write blocks for sure, however fast or slow the machine is.
const overBuffers = 16 << 20

// fillMessages is how many messages of fillSize fill overBuffers: few, with
// a binary attachment that is copied, never encoded byte by byte, so that
// filling is quick even under -race on a loaded machine.
const (
	fillSize     = 64 << 10
	fillMessages = overBuffers / fillSize
)

// fill broadcasts overBuffers bytes to room "r".
func fill(srv *Server) {
	payload := make([]byte, fillSize)
	for i := 0; i < fillMessages; i++ {
		srv.To("r").Emit(context.Background(), "m", payload)
	}
}

// closedFor waits until srv closed exactly one connection, for reason, and
// has no session left.
func closedFor(t *testing.T, srv *Server, reason clients.Reason) {
	t.Helper()
	waitFor(t, func() bool { return srv.engine.Len() == 0 })
	closes := srv.metrics.closes.WithLabelValues(reason.String())
	if n := testutil.ToFloat64(closes); n != 1 {
		t.Fatalf("%v closes for reason %q, want 1", n, reason)
	}
}

func TestQueueFullCloses(t *testing.T) {
	srv, addr := startServer(t, Config{
		Queue:        clients.QueueConfig{MaxPackets: 64, MaxBytes: -1, Policy: clients.Disconnect},
		WriteTimeout: time.Hour, // only the queue bound can trigger
	})
	c := stalledClient(t, addr)
	fill(srv)
	closedFor(t, srv, clients.ReasonQueueFull)
	// With an hour to write it, the close frame follows what the socket
	// holds.
	ce := c.closeError()
	if ce.Code != 1008 || ce.Text != "send queue full" {
		t.Fatalf("close %d %q, want 1008 send queue full", ce.Code, ce.Text)
	}
}

func TestWriteTimeoutCloses(t *testing.T) {
	srv, addr := startServer(t, Config{
		Queue:        clients.QueueConfig{MaxPackets: -1, MaxBytes: -1}, // only the write timeout can trigger
		WriteTimeout: 300 * time.Millisecond,
	})
	// The client never reads while the server writes: no write can finish,
	// whatever the load, so the deadline is missed for certain.
	c := stalledClient(t, addr)
	fill(srv)
	closedFor(t, srv, clients.ReasonWriteTimeout)
	// The close frame had the write timeout (300 ms) to get past the full
	// socket; a client that resumes reading only now may or may not see
	// it, but if it does, it names the reason.
	err := c.end()
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && (ce.Code != 1008 || ce.Text != "Send timeout") {
		t.Fatalf("close %d %q, want 1008 Send timeout", ce.Code, ce.Text)
	}
	t.Logf("connection ended: %v", err)
}

// staleDeadlineWait is the write timeout of the deadline tests: long
// enough that a client draining at once meets it on a loaded machine (the
// deadline is not what these tests judge), short enough to wait past.
const staleDeadlineWait = 2 * time.Second

// A connection that was slow once (its writes went to a goroutine of its
// own, with a write deadline) and recovered keeps working after that
// deadline would have passed: the pool's non-blocking writes must not trip
// over a stale deadline.
func TestSlowThenFastKeepsConnection(t *testing.T) {
	srv, addr := startServer(t, Config{
		WriteTimeout: staleDeadlineWait,
		Queue:        clients.QueueConfig{MaxPackets: -1, MaxBytes: -1},
		// The drain below does not answer pings: no heartbeat may end the
		// session however long the drain takes on a loaded machine.
		PingInterval: time.Hour, PingTimeout: time.Hour,
	})
	c := stalledClient(t, addr)
	// The client reads nothing until all is queued: more than the socket
	// buffers hold, so the pool worker cannot write it all at once and
	// hands the connection to a blocking writer of its own.
	t0 := time.Now()
	fill(srv)
	t.Logf("fill took %v", time.Since(t0))
	// Then it drains at full speed, so each blocking write finishes well
	// within its deadline.
	c.ws.SetReadDeadline(time.Now().Add(safetyNet))
	// Each message is two frames: the packet, then its attachment.
	for i := 0; i < 2*fillMessages; i++ {
		_, r, err := c.ws.NextReader()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		n, _ := io.Copy(io.Discard, r)
		if i%2 == 1 && n != fillSize {
			t.Fatalf("message %d: %d bytes", i, n)
		}
	}
	// Every deadline the blocking writes set lies in the past after this:
	// a timer never fires early, so sleeping is the subject here, not a
	// stand-in for an event.
	time.Sleep(staleDeadlineWait + 100*time.Millisecond)
	for i := 0; i < 20; i++ {
		srv.To("r").Emit(context.Background(), "after", i)
		c.expect(fmt.Sprintf(`^42\["after",%d`, i))
	}
	if n := srv.engine.Len(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// An upgraded connection keeps working past the upgrade timeout.
func TestUpgradedConnectionOutlivesUpgradeTimeout(t *testing.T) {
	srv, addr := startServer(t, Config{UpgradeTimeout: staleDeadlineWait, RecoveryWindow: -1})
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
	// Past every deadline the upgrade set (a timer never fires early).
	time.Sleep(staleDeadlineWait + 100*time.Millisecond)
	c.write(`421["echo","still"]`)
	c.expect(`^431\["still"\]$`)
	srv.To().Emit(context.Background(), "hello")
	c.expect(`^42\["hello"\]$`)
}
