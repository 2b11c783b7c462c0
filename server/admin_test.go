package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/roomcast/roomcast/namespaces"
)

func adminConfig(t testing.TB, readOnly bool) Config {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Admin: AdminConfig{Enabled: true, Username: "admin", PasswordHash: string(hash), ReadOnly: readOnly}}
}

// adminEvent reads until the event name arrives on /admin and returns its
// arguments.
func adminEvent(c *rawClient, name string) []json.RawMessage {
	c.t.Helper()
	for {
		msg := c.read()
		rest, ok := strings.CutPrefix(msg, "42/admin,")
		if !ok {
			continue
		}
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(rest), &args); err != nil || len(args) == 0 {
			c.t.Fatalf("event %q: %v", msg, err)
		}
		if string(args[0]) == fmt.Sprintf("%q", name) {
			return args[1:]
		}
	}
}

// adminConnect joins /admin with the auth payload and returns the answer.
func adminConnect(c *rawClient, auth string) string {
	c.t.Helper()
	c.write("40/admin," + auth)
	return c.read()
}

// adminAck reads until the ack id arrives on /admin.
func adminAck(c *rawClient, id int) string {
	c.t.Helper()
	prefix := fmt.Sprintf("43/admin,%d", id)
	for {
		if msg := c.read(); strings.HasPrefix(msg, prefix) {
			return strings.TrimPrefix(msg, prefix)
		}
	}
}

func TestAdminLoginConfigSocketsDisconnect(t *testing.T) {
	_, addr := startServer(t, adminConfig(t, false))
	for _, auth := range []string{`{"username":"admin","password":"nope"}`, `{"username":"x","password":"pw"}`, `{}`, `{"sessionId":"guess"}`} {
		c := dialRaw(t, addr, 0)
		if got := adminConnect(c, auth); got != `44/admin,{"message":"invalid credentials"}` {
			t.Fatalf("auth %s: %q", auth, got)
		}
	}
	user := dialRaw(t, addr, 0)
	ack := user.connect("/")
	var conn struct{ Sid string }
	json.Unmarshal([]byte(strings.TrimPrefix(ack, "40")), &conn)

	page := dialRaw(t, addr, 0)
	if got := adminConnect(page, `{"username":"admin","password":"pw"}`); !strings.HasPrefix(got, "40/admin,") {
		t.Fatalf("admin connect: %q", got)
	}
	session := adminEvent(page, "session")
	if cfg := adminEvent(page, "config"); string(cfg[0]) != `{"supportedFeatures":["EMIT","JOIN","LEAVE","DISCONNECT","MJOIN","MLEAVE","MDISCONNECT"]}` {
		t.Fatalf("config %s", cfg[0])
	}
	var all []struct {
		ID, Nsp   string
		Rooms     []string
		Handshake map[string]any
	}
	json.Unmarshal(adminEvent(page, "all_sockets")[0], &all)
	found := false
	for _, s := range all {
		if s.ID == conn.Sid && s.Nsp == "/" {
			found = true
			if _, ok := s.Handshake["auth"]; ok {
				t.Error("all_sockets shows the CONNECT payload")
			}
		}
	}
	if !found {
		t.Fatalf("all_sockets %+v lacks %s", all, conn.Sid)
	}

	// A session id logs in again without the password.
	again := dialRaw(t, addr, 0)
	if got := adminConnect(again, `{"sessionId":`+string(session[0])+`}`); !strings.HasPrefix(got, "40/admin,") {
		t.Fatalf("session login: %q", got)
	}
	again.ws.Close()

	page.write(`42/admin,1["_disconnect","/",false,"` + conn.Sid + `"]`)
	if got := user.read(); got != "41" {
		t.Fatalf("the user got %q, want a DISCONNECT", got)
	}
	// The command runs before its ack, the event it causes too.
	// (The page logged in again above may be reported first.)
	for gone := adminEvent(page, "socket_disconnected"); string(gone[1]) != fmt.Sprintf("%q", conn.Sid); gone = adminEvent(page, "socket_disconnected") {
		if string(gone[0]) != `"/admin"` {
			t.Fatalf("socket_disconnected %s", gone)
		}
	}
	if got := adminAck(page, 1); got != `[{"ok":true}]` {
		t.Fatalf("_disconnect ack %s", got)
	}
}

func TestAdminReadOnlyRefusesCommands(t *testing.T) {
	_, addr := startServer(t, adminConfig(t, true))
	user := dialRaw(t, addr, 0)
	var conn struct{ Sid string }
	json.Unmarshal([]byte(strings.TrimPrefix(user.connect("/"), "40")), &conn)
	page := dialRaw(t, addr, 0)
	adminConnect(page, `{"username":"admin","password":"pw"}`)
	if cfg := adminEvent(page, "config"); string(cfg[0]) != `{"supportedFeatures":[]}` {
		t.Fatalf("config %s", cfg[0])
	}
	page.write(`42/admin,7["_disconnect","/",true,"` + conn.Sid + `"]`)
	if got := adminAck(page, 7); got != `[{"error":"read-only"}]` {
		t.Fatalf("ack %s", got)
	}
	user.write(`421["echo","still"]`)
	if got := user.read(); got != `431["still"]` {
		t.Fatalf("the user got %q: disconnected by a read-only admin?", got)
	}
}

func TestAdminConfigChecked(t *testing.T) {
	for name, c := range map[string]AdminConfig{
		"no user":       {Enabled: true, PasswordHash: "$2a$04$abcdefghijklmnopqrstuu5Jv1Yx0wDf1Tqz0yCq9rQhQ0mY6p2aK"},
		"plain":         {Enabled: true, Username: "a", PasswordHash: "secret"},
		"bad namespace": {Enabled: true, Username: "a", PasswordHash: mustHash(t), Namespace: "admin"},
	} {
		if _, err := New(Config{Admin: c}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}

func mustHash(t testing.TB) string {
	h, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAdminHandshakeRedacted(t *testing.T) {
	h := adminHandshake(map[string]any{"auth": map[string]any{"token": "t"}, "address": "1.2.3.4",
		"headers": map[string]any{"cookie": "c=1", "authorization": "Bearer x", "user-agent": "ua"}})
	if _, ok := h["auth"]; ok {
		t.Error("auth kept")
	}
	hd := h["headers"].(map[string]any)
	if hd["cookie"] != "[redacted]" || hd["authorization"] != "[redacted]" || hd["user-agent"] != "ua" {
		t.Errorf("headers %v", hd)
	}
}

func TestAdminSessionsBounded(t *testing.T) {
	a := &admin{sessions: map[string]time.Time{}}
	first := a.newSession()
	for i := 0; i < adminMaxSessions+10; i++ {
		a.newSession()
	}
	if len(a.sessions) != adminMaxSessions {
		t.Fatalf("%d sessions kept", len(a.sessions))
	}
	if a.validSession(first) {
		t.Error("the oldest session outlived the bound")
	}
}

// With client authentication on (JWT), the admin namespace keeps its own
// credentials: the UI sends no token.
func TestAdminBesideClientAuth(t *testing.T) {
	cfg := adminConfig(t, false)
	cfg.Auth = AuthenticatorFunc(func(map[string]any, namespaces.Handshake) (Identity, error) {
		return Identity{}, errors.New("no token")
	})
	_, addr := startServer(t, cfg)
	if got := dialRaw(t, addr, 0).connect("/"); !strings.HasPrefix(got, "44{") {
		t.Fatalf("client without token: %q", got)
	}
	if got := adminConnect(dialRaw(t, addr, 0), `{"username":"admin","password":"pw"}`); !strings.HasPrefix(got, "40/admin,") {
		t.Fatalf("admin: %q", got)
	}
	if got := adminConnect(dialRaw(t, addr, 0), `{"username":"admin","password":"no"}`); got != `44/admin,{"message":"invalid credentials"}` {
		t.Fatalf("admin with a wrong password: %q", got)
	}
}

// Password checks are rate limited per node: a client cannot keep a core
// busy with bcrypt comparisons.
func TestAdminLoginAttemptsBounded(t *testing.T) {
	srv, addr := startServer(t, adminConfig(t, false))
	srv.admin.Load().logins = rate.NewLimiter(rate.Every(time.Hour), 2)
	c := dialRaw(t, addr, 0)
	for i, want := range []string{"invalid credentials", "invalid credentials", "too many login attempts, try again later"} {
		if got := adminConnect(c, `{"username":"admin","password":"guess"}`); got != `44/admin,{"message":"`+want+`"}` {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	// A session id is not a password check: it still works.
	ok := dialRaw(t, addr, 0)
	id := srv.admin.Load().newSession()
	if got := adminConnect(ok, `{"sessionId":"`+id+`"}`); !strings.HasPrefix(got, "40/admin,") {
		t.Fatalf("session login: %q", got)
	}
}

// The cost the admin UI adds to each socket connect when it is on (the
// socket_connected event: serialize, encode, adapter), with no page open.
func BenchmarkAdminSocketConnectedEvent(b *testing.B) {
	srv, addr := startServer(b, adminConfig(b, false))
	c := dialRaw(b, addr, 0)
	var conn struct{ Sid string }
	json.Unmarshal([]byte(strings.TrimPrefix(c.connect("/"), "40")), &conn)
	s := srv.Of("/").Socket(conn.Sid)
	b.ReportAllocs()
	for b.Loop() {
		srv.adminSocketConnected(s)
	}
}
