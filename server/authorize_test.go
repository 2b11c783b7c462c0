package server

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/roomcast/roomcast/namespaces"
)

// hubAck sends a hub event with ack id 1 and returns the ack's payload.
func hubAck(c *rawClient, event, arg string) string {
	c.t.Helper()
	c.write(fmt.Sprintf(`421[%q,%s]`, event, arg))
	return c.expect(`^431\[`)
}

func TestAuthorizeHook(t *testing.T) {
	type call struct {
		action Action
		room   string
	}
	var mu sync.Mutex
	var calls []call
	hook := func(s *namespaces.Socket, action Action, room string) error {
		mu.Lock()
		calls = append(calls, call{action, room})
		mu.Unlock()
		if room == "vip" {
			return errors.New("vip only")
		}
		// Publishing requires membership, the rule a program can add.
		if action == ActionPublish && !slices.Contains(s.Rooms(), room) {
			return errors.New("join first")
		}
		return nil
	}
	_, addr := startServer(t, Config{RecoveryWindow: -1, Hub: HubConfig{Authorize: hook}})
	c := dialRaw(t, addr, 0)
	c.connect("/")

	tests := []struct {
		name, event, arg, want string
	}{
		{"join allowed", "join", `"lobby"`, `431[{"ok":true}]`},
		{"join denied", "join", `"vip"`, `431[{"error":"vip only"}]`},
		{"leave denied", "leave", `"vip"`, `431[{"error":"vip only"}]`},
		{"leave allowed", "leave", `"lobby"`, `431[{"ok":true}]`},
		{"publish denied (not a member)", "publish", `{"room":"lobby","event":"e"}`, `431[{"error":"join first"}]`},
		{"reserved room never reaches the hook", "join", `"user:1"`, `431[{"error":"rooms starting with user: are reserved"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hubAck(c, tc.event, tc.arg); got != tc.want {
				t.Fatalf("%s %s: got %s, want %s", tc.event, tc.arg, got, tc.want)
			}
		})
	}
	t.Run("publish allowed (member)", func(t *testing.T) {
		if got := hubAck(c, "join", `"lobby"`); got != `431[{"ok":true}]` {
			t.Fatal(got)
		}
		if got := hubAck(c, "publish", `{"room":"lobby","event":"e"}`); got != `431[{"ok":true}]` {
			t.Fatal(got)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	want := []call{{ActionJoin, "lobby"}, {ActionJoin, "vip"}, {ActionLeave, "vip"}, {ActionLeave, "lobby"}, {ActionPublish, "lobby"}, {ActionJoin, "lobby"}, {ActionPublish, "lobby"}}
	if !slices.Equal(calls, want) {
		t.Fatalf("hook calls %v, want %v", calls, want)
	}
}

// TestAuthorizeDefault: without claim and hook, a client may publish to a
// room it has not joined (as before; see README "Security").
func TestAuthorizeDefault(t *testing.T) {
	_, addr := startServer(t, Config{RecoveryWindow: -1})
	sub := dialRaw(t, addr, 0)
	sub.connect("/")
	sub.join("news")
	pub := dialRaw(t, addr, 0)
	pub.connect("/")
	if got := hubAck(pub, "publish", `{"room":"news","event":"headline","data":1}`); got != `431[{"ok":true}]` {
		t.Fatal(got)
	}
	sub.next(`^42\["headline",1\]$`)
}

func TestRoomPatterns(t *testing.T) {
	tests := []struct {
		pats []string
		room string
		want bool
	}{
		{[]string{"chat:*"}, "chat:a", true},
		{[]string{"chat:*"}, "chat:", true},
		{[]string{"chat:*"}, "chat", false},
		{[]string{"news"}, "news", true},
		{[]string{"news"}, "newsroom", false},
		{[]string{"*"}, "anything", true},
		{[]string{}, "news", false},
	}
	for _, tc := range tests {
		if got := roomMatches(tc.pats, tc.room); got != tc.want {
			t.Errorf("roomMatches(%q, %q) = %v, want %v", tc.pats, tc.room, got, tc.want)
		}
	}
	for _, bad := range []any{"chat:*", []any{1}, []any{"a*b"}, []any{""}} {
		if _, err := parseRoomPatterns(map[string]any{RoomsClaim: bad}); err == nil {
			t.Errorf("claim %v: no error", bad)
		}
	}
	if p, err := parseRoomPatterns(map[string]any{}); p != nil || err != nil {
		t.Errorf("no claim: %v, %v", p, err)
	}
}
