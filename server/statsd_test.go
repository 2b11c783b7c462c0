package server

import (
	"net"
	"strings"
	"testing"
	"time"
)

// udpListener collects StatsD lines sent to it.
type udpListener struct {
	t     testing.TB
	conn  *net.UDPConn
	lines chan string
	seen  []string
}

func listenUDP(t testing.TB) *udpListener {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l := &udpListener{t: t, conn: c, lines: make(chan string, 10000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					select {
					case l.lines <- line:
					default: // the test reads what it needs; the rest may go
					}
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return l
}

// expect returns the first line, seen or coming, that matches pred.
func (l *udpListener) expect(what string, pred func(string) bool) string {
	l.t.Helper()
	for _, s := range l.seen {
		if pred(s) {
			return s
		}
	}
	deadline := time.After(safetyNet)
	for {
		select {
		case line := <-l.lines:
			l.seen = append(l.seen, line)
			if pred(line) {
				return line
			}
		case <-deadline:
			l.t.Fatalf("no StatsD line %s within %v", what, safetyNet)
		}
	}
}

func TestStatsDExport(t *testing.T) {
	l := listenUDP(t)
	srv, addr := startServer(t, Config{
		StatsDAddr: l.conn.LocalAddr().String(), StatsDPrefix: "rc", StatsDInterval: 20 * time.Millisecond,
		StatsDSampleRate: 1, MaxConnections: 7,
	})
	a := dialRaw(t, addr, 0)
	dialRaw(t, addr, 0)
	a.connect("/")
	// Counters go out as counts of their increase, gauges as values.
	l.expect("rc.connections_opened:2|c", func(s string) bool { return s == "rc.connections_opened:2|c" })
	l.expect("rc.connections_open:2|g", func(s string) bool { return s == "rc.connections_open:2|g" })
	l.expect("rc.connections_max:7|g", func(s string) bool { return s == "rc.connections_max:7|g" })
	l.expect("rc.sockets_connected.root:1|g", func(s string) bool { return s == "rc.sockets_connected.root:1|g" })
	l.expect("rc.socket_connects.root:1|c", func(s string) bool { return s == "rc.socket_connects.root:1|c" })
	l.expect("rc.goroutines", func(s string) bool { return strings.HasPrefix(s, "rc.goroutines:") && strings.HasSuffix(s, "|g") })
	// A counter's increase is sent once: after the first 2, only the next one.
	dialRaw(t, addr, 0)
	l.expect("rc.connections_opened:1|c", func(s string) bool { return s == "rc.connections_opened:1|c" })
	var opened []string
	for _, s := range l.seen {
		if strings.HasPrefix(s, "rc.connections_opened:") {
			opened = append(opened, s)
		}
	}
	if strings.Join(opened, " ") != "rc.connections_opened:2|c rc.connections_opened:1|c" {
		t.Fatalf("connections_opened sent as %q, want its increases 2 then 1", opened)
	}
	// Timings: send latency of a packet written (ms).
	a.write(`42["echo","hi"]`)
	l.expect("rc.send_latency timing", func(s string) bool {
		return strings.HasPrefix(s, "rc.send_latency:") && strings.HasSuffix(s, "|ms")
	})
	// Labels with spaces become name-safe.
	srv.metrics.rejected.WithLabelValues(rejectMaxConnections).Inc()
	l.expect("rc.handshakes_rejected.max_connections:1|c", func(s string) bool { return s == "rc.handshakes_rejected.max_connections:1|c" })
}

func TestStatsDNames(t *testing.T) {
	for in, want := range map[string]string{
		"roomcast_connections_open":         "connections_open",
		"roomcast_backplane_messages_total": "backplane_messages",
		"go_goroutines":                     "goroutines",
		"process_resident_memory_bytes":     "resident_memory_bytes",
		"go_gc_duration_seconds":            "",
	} {
		got, ok := statsdName(in)
		if got != want || ok != (want != "") {
			t.Errorf("statsdName(%q) = %q %v", in, got, ok)
		}
	}
	for in, want := range map[string]string{"/": "root", "/chat": "chat", "send queue full": "send_queue_full", "/a.b": "a_b", "": "_"} {
		if got := statsdLabel(in); got != want {
			t.Errorf("statsdLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStatsDBadAddress(t *testing.T) {
	if _, err := New(Config{StatsDAddr: "not an address"}); err == nil {
		t.Fatal("a bad StatsD address was accepted")
	}
}
