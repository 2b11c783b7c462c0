package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A polling POST that announces more than it sends is answered and closed
// once the read timeout passes, and an idle keep-alive connection is closed
// after the idle timeout, while a long-poll GET and a WebSocket, both idle
// for longer than those timeouts, go on.
func TestHTTPReadAndIdleTimeouts(t *testing.T) {
	const short = 200 * time.Millisecond
	srv, addr := startServer(t, Config{
		ReadTimeout:    short,
		IdleTimeout:    short,
		PingInterval:   3 * time.Second, // a long-poll GET waits this long: well past both timeouts
		PingTimeout:    10 * time.Second,
		RecoveryWindow: -1,
	})

	// A long-poll GET on a session of its own, waiting for data.
	pollSid := pollingHandshake(t, addr)
	type pollResult struct {
		status int
		body   string
		err    error
	}
	polled := make(chan pollResult, 1)
	go func() {
		r, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling&sid=" + pollSid)
		if err != nil {
			polled <- pollResult{err: err}
			return
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		polled <- pollResult{r.StatusCode, string(b), err}
	}()

	// A WebSocket session, connected, then idle.
	ws := dialRaw(t, addr, 0)
	if got := ws.connect("/"); !strings.HasPrefix(got, "40{") {
		t.Fatalf("connect answer %q", got)
	}

	// A POST announcing 100 bytes and sending 10: answered 408, then closed.
	badSid := pollingHandshake(t, addr)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n%s", badSid, addr, `42["echo"]`)
	conn.SetReadDeadline(time.Now().Add(safetyNet))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("slow POST: no answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow POST answered %d, want 408", resp.StatusCode)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("slow POST connection: read %q, %v; want it closed (EOF)", rest, err)
	}
	if srv.engine.Conn(badSid) != nil {
		t.Fatal("the session of the slow POST is still open")
	}

	// A keep-alive connection that sends nothing after its first request is
	// closed by the idle timeout.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	idle.SetReadDeadline(time.Now().Add(safetyNet))
	ibr := bufio.NewReader(idle)
	hr, err := http.ReadResponse(ibr, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, hr.Body)
	hr.Body.Close()
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: %v, want it closed (EOF)", err)
	}

	// Both the WebSocket and the long-poll GET have now been idle longer
	// than either timeout. The WebSocket still works ...
	ws.write(`421["echo","still"]`)
	ws.expect(`^431\["still"\]$`)
	// ... and the GET ends normally, with the ping of the heartbeat.
	select {
	case p := <-polled:
		if p.err != nil || p.status != http.StatusOK || p.body != "2" {
			t.Fatalf("long-poll GET: status %d body %q err %v, want 200 \"2\"", p.status, p.body, p.err)
		}
	case <-time.After(safetyNet):
		t.Fatal("long-poll GET did not end")
	}
	if srv.engine.Conn(pollSid) == nil {
		t.Fatal("the long-polling session was closed")
	}
}

// An HTTP API POST whose body does not arrive gets 408 after the read
// timeout, as a polling POST does, instead of holding its goroutine for as
// long as the client likes.
func TestAPIReadTimeout(t *testing.T) {
	_, addr := startServer(t, Config{ReadTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/emit HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n%s", addr, `{"event":`)
	conn.SetReadDeadline(time.Now().Add(safetyNet))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("slow API POST: no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("slow API POST answered %d %s, want 408 with a JSON error", resp.StatusCode, body)
	}
}

// The read timeout bounds only the body: an API emit with ack whose answer
// comes after it is not cut (net/http's background read would cancel the
// request if the deadline stayed set after the body was read).
func TestAPIAckOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	_, addr := startServer(t, Config{ReadTimeout: readTimeout})
	c := dialRaw(t, addr, 0)
	if got := c.connect("/"); !strings.HasPrefix(got, "40{") {
		t.Fatalf("connect answer %q", got)
	}
	type result struct {
		code int
		out  map[string]any
	}
	done := make(chan result, 1)
	go func() {
		code, _, out := apiDo(t, "POST", "http://"+addr+"/api/v1/emit", "application/json", "", `{"event":"poll","ack":true,"timeout":60000}`)
		done <- result{code, out}
	}()
	ev := c.read() // 421["poll"]: the emit reached the client
	id := strings.TrimPrefix(strings.SplitN(ev, "[", 2)[0], "42")
	// Answer only after the read timeout has passed: the subject here.
	time.Sleep(3 * readTimeout)
	c.write("43" + id + `["yes"]`)
	select {
	case r := <-done:
		if r.code != 200 || fmt.Sprint(r.out["acks"]) != "[yes]" {
			t.Fatalf("emit with ack answered %d %v, want 200 with acks [yes]", r.code, r.out)
		}
	case <-time.After(safetyNet):
		t.Fatal("no API answer")
	}
}
