package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/roomcast/roomcast/namespaces"
)

// startBare starts a server with cfg as given (startServer turns the hub
// on).
func startBare(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t)
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
		ctx, cancel := context.WithTimeout(context.Background(), safetyNet)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, fmt.Sprint(ln.Addr())
}

// A client that never sends CONNECT is closed after Config.ConnectTimeout:
// before the first heartbeat (40 s away), where the 45 s default would
// come after it.
func TestConnectTimeoutCloses(t *testing.T) {
	_, addr := startBare(t, Config{ConnectTimeout: 100 * time.Millisecond, PingInterval: 40 * time.Second})
	c := dialRaw(t, addr, 0)
	c.ws.SetReadDeadline(time.Now().Add(safetyNet))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", safetyNet)
			}
			return // closed
		}
		if string(b) == "2" {
			t.Fatal("a heartbeat came before the connect timeout closed the connection")
		}
	}
}

// The zero Config is the reference server's: no recovery (no pid in the
// CONNECT answer), no hub (a "join" gets no answer; handlers run in order,
// so the program's "probe" answer coming first shows it).
func TestZeroConfigHasNoHubNoRecovery(t *testing.T) {
	srv, addr := startBare(t, Config{})
	srv.Of("/").On("probe", func(ev *namespaces.Event) { ev.Ack("ok") })
	c := dialRaw(t, addr, 0)
	if ans := c.connect("/"); !strings.HasPrefix(ans, `40{"sid":`) || strings.Contains(ans, "pid") {
		t.Fatalf("CONNECT answer %q: recovery is on", ans)
	}
	c.write(`421["join","news"]`)
	c.write(`422["probe"]`)
	if ans := c.read(); ans != `432["ok"]` {
		t.Fatalf("got %q: the hub answered", ans)
	}
}

// Auth authenticates every namespace's CONNECT with the hub off, the
// program's own namespaces included.
func TestAuthWithoutHub(t *testing.T) {
	auth := AuthenticatorFunc(func(a map[string]any, _ namespaces.Handshake) (Identity, error) {
		if a["token"] != "ok" {
			return Identity{}, errors.New("bad token")
		}
		return Identity{UserID: "u1"}, nil
	})
	srv, addr := startBare(t, Config{Auth: auth})
	srv.Of("/chat")
	for _, tt := range []struct {
		name, packet, want string
		inUserRoom         int
	}{
		{"main, no token", `40`, `44{"data":{"reason":"bad token"},"message":"unauthorized"}`, 0},
		{"program namespace, no token", `40/chat,`, `44/chat,{"data":{"reason":"bad token"},"message":"unauthorized"}`, 0},
		{"program namespace, token", `40/chat,{"token":"ok"}`, `40/chat,{"sid":`, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr, 0)
			c.write(tt.packet)
			if ans := c.read(); !strings.HasPrefix(ans, tt.want) {
				t.Fatalf("got %q, want %q", ans, tt.want)
			}
			// Checked while the client is connected (its connection ends
			// with the subtest).
			if got := srv.Of("/chat").To(UserRoom("u1")).Sockets(); len(got) != tt.inUserRoom {
				t.Fatalf("%d sockets in the user room, want %d", len(got), tt.inUserRoom)
			}
		})
	}
}
