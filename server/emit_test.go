package server

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/adapter"
)

// buildRoomcast builds the roomcast command for a test.
func buildRoomcast(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "roomcast")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/roomcast").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// An emitter outside the cluster (the Go Emitter, the roomcast emit
// command) reaches the sockets of every node, on every Redis backplane:
// to all, to a room, except a room.
func TestEmitterEveryBackplane(t *testing.T) {
	bin := buildRoomcast(t)
	for _, bp := range backplanes {
		t.Run(bp, func(t *testing.T) {
			rs := startRedis(t)
			srvs, addrs := cluster(t, rs, 2, Config{Backplane: bp, RecoveryWindow: -1})
			ctx := context.Background()
			rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port)})
			t.Cleanup(func() { rc.Close() })
			// c0 on node 0 in room a; c1 on node 1 in a and b; c2 on node 1 in b.
			var cl []*rawClient
			for i, rooms := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
				c := dialRaw(t, addrs[min(i, 1)], 0)
				c.connect("/")
				for _, r := range rooms {
					c.join(r)
				}
				cl = append(cl, c)
			}
			waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
			if bp == "redis-sharded" {
				// Room broadcasts go to the room's channel, heard once the
				// nodes with members have subscribed to it.
				waitFor(t, func() bool {
					n, _ := rc.PubSubShardNumSub(ctx, "socket.io#/#a#", "socket.io#/#b#").Result()
					return n["socket.io#/#a#"] == 2 && n["socket.io#/#b#"] == 1
				})
			}
			// Every node reads the backplane (streams: from the entry on).
			srvs[0].Of("/").To().Emit(ctx, "ready")
			for _, c := range cl {
				c.expect(`^42\["ready"\]$`)
			}
			e, err := adapter.NewEmitterWith(adapter.EmitterConfig{Client: rc, Backplane: bp})
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name      string
				goEmit    func(event string) error
				cmd       []string
				receivers []int
			}{
				{"all", func(ev string) error { return e.Emit(ctx, ev, 1) }, nil, []int{0, 1, 2}},
				{"room", func(ev string) error { return e.To("a").Emit(ctx, ev, 1) }, []string{"--room", "a"}, []int{0, 1}},
				{"two rooms", func(ev string) error { return e.To("a", "b").Emit(ctx, ev, 1) }, []string{"--room", "a,b"}, []int{0, 1, 2}},
				{"room except a room", func(ev string) error { return e.To("a").Except("b").Emit(ctx, ev, 1) }, []string{"--room", "a", "--except", "b"}, []int{0}},
				{"except a room", func(ev string) error { return e.Except("a").Emit(ctx, ev, 1) }, []string{"--except", "a"}, []int{2}},
			}
			check := func(t *testing.T, event string, receivers []int) {
				t.Helper()
				// The fence comes after the event, on every node: what
				// should not have arrived would come before it.
				if err := e.Emit(ctx, "fence", event); err != nil {
					t.Fatal(err)
				}
				for i, c := range cl {
					for _, r := range receivers {
						if r == i {
							c.next(fmt.Sprintf(`^42\[%q,1\]$`, event))
						}
					}
					c.next(fmt.Sprintf(`^42\["fence",%q\]$`, event))
				}
			}
			for _, tc := range cases {
				t.Run("go "+tc.name, func(t *testing.T) {
					ev := "go " + tc.name
					if err := tc.goEmit(ev); err != nil {
						t.Fatal(err)
					}
					check(t, ev, tc.receivers)
				})
				t.Run("command "+tc.name, func(t *testing.T) {
					ev := "cmd " + tc.name
					args := append([]string{"emit", "--adapter", bp, "--redis-url", rs.url(), "--event", ev, "--data", "1"}, tc.cmd...)
					if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
						t.Fatalf("roomcast %s: %v\n%s", strings.Join(args, " "), err, out)
					}
					check(t, ev, tc.receivers)
				})
			}
		})
	}
	t.Run("unknown adapter", func(t *testing.T) {
		for _, bp := range []string{"nope", "memory"} {
			out, err := exec.Command(bin, "emit", "--adapter", bp, "--event", "x").CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("--adapter %s: %v, want exit code 2\n%s", bp, err, out)
			}
			if !strings.Contains(string(out), `unknown backplane "`+bp+`"`) || !strings.Contains(string(out), "redis-sharded") {
				t.Fatalf("--adapter %s: unclear message %q", bp, out)
			}
		}
		if _, err := adapter.NewEmitterWith(adapter.EmitterConfig{Backplane: "nope"}); !errors.Is(err, adapter.ErrBackplane) {
			t.Fatalf("NewEmitterWith: %v", err)
		}
	})
}
